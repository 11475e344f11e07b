"""Real reimplementations pass the candidate properties; every broken one fails, caught by the property
meant for it, with a message naming the candidate, the layer and the activation."""

import pytest
import torch

from bertcheck.subjects.candidate import LayerCandidate, ModelCandidate, reference_layer, reference_model
from bertcheck.properties.registry import for_candidates
from bertcheck.tools.verify import run
from tests import candidates as impls

F32 = (torch.float32,)


def _assert_passes(report):
    assert report.passed, report.text()
    assert all(r.examples >= 1 for r in report.results)


# ---- real reimplementations ------------------------------------------------------------------------


@pytest.mark.parametrize("model_name", ["random:tiny", "minilm"])
def test_bertchecks_own_reference_layer_passes_every_layer_property(model_name, tiny, minilm):
    _assert_passes(run(LayerCandidate(reference_layer), {"random:tiny": tiny, "minilm": minilm}[model_name]))


@pytest.mark.parametrize("model_name", ["random:tiny", "minilm"])
def test_torch_transformer_encoder_layer_with_bert_weights_passes_every_layer_property(model_name, tiny, minilm):
    _assert_passes(run(LayerCandidate(impls.torch_encoder_layer), {"random:tiny": tiny, "minilm": minilm}[model_name]))


def test_bertchecks_own_reference_model_passes_every_model_property(tiny):
    _assert_passes(run(ModelCandidate(reference_model), tiny))


def test_the_hf_model_under_torch_compile_passes_every_model_property(tiny):
    # One inductor compilation with dynamic shapes (~30 s on 2 cores) serves every example.
    _assert_passes(run(ModelCandidate(impls.compiled_model), tiny, examples=10, dtypes=F32))


# ---- the zoo of broken layers and models ------------------------------------------------------------


def test_every_candidate_property_has_a_broken_candidate_it_must_catch():
    assert {prop for _, prop in impls.BROKEN_LAYERS.values()} == set(for_candidates("layer"))
    assert {prop for _, prop in impls.BROKEN_MODELS.values()} == set(for_candidates("model"))


@pytest.mark.parametrize("bug", list(impls.BROKEN_LAYERS))
def test_a_broken_layer_fails_the_property_meant_to_catch_it(bug, tiny):
    factory, prop = impls.BROKEN_LAYERS[bug]
    report = run(LayerCandidate(factory, f"zoo:{bug}"), tiny, properties=[prop])
    (result,) = report.results
    assert not result.passed and result.error is None, report.text()
    failure = result.failure
    assert failure.where.startswith("layer ") and failure.activation.startswith("blocks."), failure.report()
    text = report.text()
    assert f"candidate: zoo:{bug} (layer factory)" in text
    assert "Reproduce:\n  python -m bertcheck verify --impl" in text
    assert report.exit_code == 1


@pytest.mark.parametrize("bug", list(impls.BROKEN_MODELS))
def test_a_broken_model_fails_the_property_meant_to_catch_it(bug, tiny):
    factory, prop = impls.BROKEN_MODELS[bug]
    report = run(ModelCandidate(factory, f"zoo:{bug}"), tiny, properties=[prop], dtypes=F32)
    (result,) = report.results
    assert not result.passed and result.error is None, report.text()
    assert result.failure.where in {"embeddings"} | {f"layer {i}" for i in range(2)}, result.failure.report()
    assert report.exit_code == 1


def test_a_shifted_position_is_named_at_the_embeddings(tiny):
    report = run(
        ModelCandidate(impls.BROKEN_MODELS["position ids from 1"][0]),
        tiny,
        properties=["model-equivalence"],
        dtypes=F32,
    )
    failure = report.results[0].failure
    assert (failure.where, failure.activation) == ("embeddings", "embed.out"), failure.report()


def test_nan_at_padded_positions_is_a_failure_that_says_nan(tiny):
    report = run(
        LayerCandidate(impls.BROKEN_LAYERS["NaN at padded positions"][0]), tiny, properties=["layer-equivalence"]
    )
    text = report.results[0].failure.report()
    assert "NaN or infinite" in text and "padded positions included" in text
    assert "padded 1 (rows 1+)" in text  # shrunk to the smallest input with padding: one padded token


def test_the_determinism_property_alone_catches_a_few_ulps_of_jitter(tiny):
    report = run(LayerCandidate(impls.BROKEN_LAYERS["a few ulps of run-to-run jitter"][0]), tiny)
    assert [r.property for r in report.results if not r.passed] == ["determinism"], report.text()


# ---- a factory that breaks its reads_only promise ---------------------------------------------------


def _rounds_in_place(module):
    with torch.no_grad():
        for p in module.parameters():
            p.copy_(p.round(decimals=1))


def _rounds_through_data(module):  # no version bump: only the content tells
    for p in module.parameters():
        p.data.round_(decimals=1)


def _swaps_the_tensors(module):
    for p in module.parameters():
        p.data = p.data.round(decimals=1)


# Every change in the factory and on the first call; after that, the changes a tensor's version counter
# or storage shows (a `.data` write in place on a later call is the one change not watched: the content
# is summed after the build and the first call only, as a sum per call would cost a pass over the weights).
WATCHED = [
    (change, when)
    for change in (_rounds_in_place, _rounds_through_data, _swaps_the_tensors)
    for when in ("in the factory", "on the first call", "on a later call")
    if (change, when) != (_rounds_through_data, "on a later call")
]


@pytest.mark.parametrize("change, when", WATCHED, ids=[f"{c.__name__[1:]}-{w}" for c, w in WATCHED])
def test_a_reads_only_factory_that_changes_what_it_reads_is_refused_and_the_model_restored(change, when):
    from bertcheck.subjects.candidate import ChangedWhatItRead, reads_only
    from bertcheck.subjects.subject import Bert

    bert = Bert.load("random:tiny")  # its own: this test changes it
    before = {k: v.clone() for k, v in bert.model().state_dict().items()}
    calls = []

    @reads_only
    def factory(hf_layer, config):
        if when == "in the factory":
            change(hf_layer)
        inner = reference_layer(hf_layer, config)

        def fn(hidden_states, attention_mask):
            calls.append(1)
            if (when == "on the first call" and len(calls) == 1) or (when == "on a later call" and len(calls) == 3):
                change(hf_layer)
            return inner(hidden_states, attention_mask)

        return fn

    with pytest.raises(ChangedWhatItRead) as caught:
        run(LayerCandidate(factory, "mine:rounding"), bert, properties=["layer-equivalence"], dtypes=F32)
    message = str(caught.value)
    assert "mine:rounding is marked @bertcheck.reads_only, but its" in message
    assert "changed the module it was handed: attention.self.query.weight" in message
    after = bert.model().state_dict()
    assert all(torch.equal(after[k], v) for k, v in before.items())  # loaded again: nothing after it sees the change


@pytest.mark.parametrize("factory", ["off_at_batch_4_to_8", "off_at_17_to_127_tokens"])
def test_a_layer_wrong_only_at_large_batches_or_medium_lengths_is_caught_at_the_default_budget(factory, tiny):
    report = run(LayerCandidate(getattr(impls, factory), factory), tiny, dtypes=F32)  # 25 examples, the default
    assert not report.passed, report.text()
    caught = [r for r in report.results if r.failure is not None]
    assert any(r.property == "layer-equivalence" for r in caught), report.text()
