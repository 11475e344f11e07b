"""HF's own layer against the layer properties, fed generated hidden states: low variance, large
magnitudes, padding. Cheap: no full forward. (The same properties a reimplementation is held to,
properties/test_candidate.py, plus two that read HF's own modules.)"""

import pytest
from hypothesis import given, target
from hypothesis import strategies as st

from bertcheck.inputs.cases import ATTENTION_SCALES
from bertcheck.properties.layer_properties import RELATIVE_PERMUTATION
from bertcheck.properties.registry import run_layer_property
from bertcheck.inputs.strategies import layer_cases


def _run(bert, data, check, scales=("unit", "low", "large")):
    layers, longest = bert.config.num_hidden_layers, bert.max_length
    case = data.draw(layer_cases(n_layers=layers, scales=scales, max_long_tokens=longest), label="case")
    target(run_layer_property(bert, case, check), label=check)


@given(data=st.data())
def test_each_layer_equals_the_reference_on_generated_states(bert, data):
    _run(bert, data, "layer-equivalence", ATTENTION_SCALES)


@given(data=st.data())
def test_each_layer_output_is_normalized_per_token(bert, data):
    _run(bert, data, "output-statistics", ATTENTION_SCALES)


@given(data=st.data())
def test_permuting_tokens_permutes_a_layers_output(bert, data):
    if bert.relative_positions:
        pytest.skip(RELATIVE_PERMUTATION)
    _run(bert, data, "permutation", ATTENTION_SCALES)


@given(data=st.data())
def test_a_layer_gives_each_row_what_it_gives_it_alone(bert, data):
    _run(bert, data, "batching", ATTENTION_SCALES)


@given(data=st.data())
def test_a_layer_ignores_its_padded_positions(bert, data):
    _run(bert, data, "padding", ATTENTION_SCALES)


@given(data=st.data())
def test_a_layer_gives_the_same_output_twice(bert, data):
    _run(bert, data, "determinism")


@given(data=st.data())
def test_the_feed_forward_changes_only_the_token_it_is_given(bert, data):
    _run(bert, data, "ffn-locality")


@given(data=st.data())
def test_layernorm_ignores_scale_and_shift_up_to_the_eps_term(bert, data):
    _run(bert, data, "layernorm-invariance")


@given(data=st.data())
def test_zeroing_a_sublayer_leaves_the_layernorm_of_its_residual(bert, data):
    _run(bert, data, "residual-probes", ATTENTION_SCALES)
