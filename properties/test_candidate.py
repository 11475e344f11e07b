"""A reimplementation against the spec: the layer factory of --bert-impl and the model factory of
--bert-model-impl (by default bertcheck's own reference, which must pass like any candidate)."""

from hypothesis import given, target
from hypothesis import strategies as st

from bertcheck.properties.registry import run_layer_property, run_model_property
from bertcheck.inputs.strategies import DEFAULT_DTYPES, layer_strategy, model_strategy

DTYPES = DEFAULT_DTYPES  # as `bertcheck verify` draws (and the plugin's summary says)


def _dtypes(candidate):
    """The dtypes drawn: float32 and float64, those of them the candidate declares it runs (`bertcheck.runs`)."""
    dtypes = candidate.runs.dtypes_of(DTYPES)
    if not dtypes:
        raise ValueError(f"{candidate.name} declares it runs {candidate.runs.says('dtypes')}: none of float32, float64")
    return dtypes


def _layer(bert, candidate, data, key):
    case = data.draw(layer_strategy(bert, _dtypes(candidate), runs=candidate.runs), label="case")
    target(run_layer_property(bert, case, key, candidate), label=key)


def _model(bert, candidate, data, key):
    case = data.draw(model_strategy(bert, _dtypes(candidate), runs=candidate.runs), label="case")
    target(run_model_property(bert, case, key, candidate), label=key)


@given(data=st.data())
def test_the_candidate_layer_equals_the_spec_and_so_do_its_intermediates(bert, bert_layer_impl, data):
    _layer(bert, bert_layer_impl, data, "layer-equivalence")


@given(data=st.data())
def test_the_candidate_layer_output_is_normalized_per_token(bert, bert_layer_impl, data):
    _layer(bert, bert_layer_impl, data, "output-statistics")


@given(data=st.data())
def test_the_candidate_layer_keeps_both_residuals_under_weight_surgery(bert, bert_layer_impl, data):
    _layer(bert, bert_layer_impl, data, "residual-probes")


@given(data=st.data())
def test_the_candidate_layer_is_permutation_equivariant(bert, bert_layer_impl, data):
    _layer(bert, bert_layer_impl, data, "permutation")


@given(data=st.data())
def test_the_candidate_layer_gives_each_row_what_it_gives_it_alone(bert, bert_layer_impl, data):
    _layer(bert, bert_layer_impl, data, "batching")


@given(data=st.data())
def test_the_candidate_layer_ignores_padded_positions(bert, bert_layer_impl, data):
    _layer(bert, bert_layer_impl, data, "padding")


@given(data=st.data())
def test_the_candidate_layer_is_deterministic(bert, bert_layer_impl, data):
    _layer(bert, bert_layer_impl, data, "determinism")


@given(data=st.data())
def test_the_candidate_model_gives_the_specs_embeddings_and_every_layers_output(bert, bert_model_impl, data):
    _model(bert, bert_model_impl, data, "model-equivalence")


@given(data=st.data())
def test_the_candidate_model_gives_each_text_what_it_gives_it_alone(bert, bert_model_impl, data):
    _model(bert, bert_model_impl, data, "batching")


@given(data=st.data())
def test_the_candidate_model_ignores_extra_padding(bert, bert_model_impl, data):
    _model(bert, bert_model_impl, data, "padding")


@given(data=st.data())
def test_the_candidate_model_is_deterministic(bert, bert_model_impl, data):
    _model(bert, bert_model_impl, data, "determinism")
