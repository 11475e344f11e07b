"""One layer fed generated hidden states: low variance, large magnitudes, padding. Cheap: no full forward."""

from hypothesis import given, target
from hypothesis import strategies as st

from bertcheck.layer_properties import ATTENTION_SCALES, LAYER_PROPERTIES
from bertcheck.strategies import layer_cases


def _cases(bert, scales=("unit", "low", "large")):
    return layer_cases(n_layers=bert.config.num_hidden_layers, scales=scales)


@given(data=st.data())
def test_each_layer_equals_the_reference_on_generated_states(bert, data):
    case = data.draw(_cases(bert, ATTENTION_SCALES))
    target(LAYER_PROPERTIES["layer-equivalence"](bert, case), label="layer-equivalence")


@given(data=st.data())
def test_permuting_tokens_permutes_a_layers_output(bert, data):
    case = data.draw(_cases(bert, ATTENTION_SCALES))
    target(LAYER_PROPERTIES["permutation"](bert, case), label="permutation")


@given(data=st.data())
def test_the_feed_forward_changes_only_the_token_it_is_given(bert, data):
    target(LAYER_PROPERTIES["ffn-locality"](bert, data.draw(_cases(bert))), label="ffn-locality")


@given(data=st.data())
def test_layernorm_ignores_scale_and_shift_up_to_the_eps_term(bert, data):
    target(LAYER_PROPERTIES["layernorm-invariance"](bert, data.draw(_cases(bert))), label="layernorm-invariance")


@given(data=st.data())
def test_zeroing_a_sublayer_leaves_the_layernorm_of_its_residual(bert, data):
    target(LAYER_PROPERTIES["residual-probes"](bert, data.draw(_cases(bert))), label="residual-probes")
