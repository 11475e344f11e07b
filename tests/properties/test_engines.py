"""Engines and exports: candidates that give only their outputs (the last hidden state, the pooler output),
in any array type, within what they declare they run; checked end to end, and a failure names the
known deviation that explains it."""

import importlib.util
import os
import subprocess
import sys

import numpy as np
import pytest
import torch

import bertcheck
from bertcheck.subjects.candidate import FactoryError, ModelCandidate
from bertcheck.inputs.cases import Case
from bertcheck.spec.deviations import CATALOGUE
from bertcheck.spec.names import state_name
from bertcheck.tools.verify import run
from tests import candidates as impls

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
F32 = (torch.float32,)
ONNX = pytest.mark.skipif(importlib.util.find_spec("onnxruntime") is None, reason="the onnx extra is not installed")


def _states(hf_model, **inputs):
    with torch.no_grad():
        return hf_model(**inputs, return_dict=True)


def _engine(convert, *, pooler=True):
    """A model factory giving HF's last hidden state (and pooler output), each passed through `convert`."""

    @bertcheck.reads_only
    def factory(hf_model):
        hf_model.eval()

        def fn(input_ids, attention_mask, token_type_ids):
            out = _states(hf_model, input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids)
            given = {"last_hidden_state": convert(out.last_hidden_state)}
            return {**given, "pooler_output": convert(out.pooler_output)} if pooler else given

        return fn

    return factory


class OnlyDlpack:
    """An array of another framework, as JAX, TensorFlow, MLX and CuPy give one: DLPack, nothing else."""

    def __init__(self, tensor):
        self._tensor = tensor

    def __dlpack__(self, **kwargs):
        return self._tensor.__dlpack__(**kwargs)

    def __dlpack_device__(self):
        return self._tensor.__dlpack_device__()


class OnlyArray:
    """An array that speaks numpy's protocol only (``__array__``)."""

    def __init__(self, tensor):
        self._array = tensor.numpy()

    def __array__(self, dtype=None, copy=None):
        return self._array if dtype is None else self._array.astype(dtype)


def _read_only(tensor):
    array = tensor.numpy().copy()
    array.flags.writeable = False
    return array


# ---- any array, any subset of the outputs ----------------------------------------------------------


@pytest.mark.parametrize(
    "convert",
    [lambda t: t.numpy(), OnlyDlpack, OnlyArray, _read_only, lambda t: t],
    ids=["numpy", "dlpack only", "__array__ only", "read-only numpy", "torch"],
)
def test_an_engine_giving_its_outputs_in_any_array_type_passes(convert, tiny):
    report = run(ModelCandidate(_engine(convert)), tiny, examples=8)
    assert report.passed, report.text()
    compared, missing = report.outputs
    assert compared == ["hidden_states[2] (last_hidden_state)", "pooler_output"], report.text()
    assert missing[0] == "2 hidden states (hidden_states[0] to [1])"
    assert "outputs compared: hidden_states[2] (last_hidden_state), pooler_output" in report.text()


def test_an_output_that_is_no_array_is_a_clear_error_naming_what_it_was(tiny):
    report = run(ModelCandidate(_engine(lambda t: t.tolist()), "lists"), tiny, examples=2, properties=["determinism"])
    assert report.exit_code == 2, report.text()
    assert "lists returned list for last_hidden_state (hidden state 2), expected an array of shape" in report.text()


def test_a_numpy_output_in_another_dtype_is_an_error(tiny):
    report = run(ModelCandidate(_engine(lambda t: t.numpy().astype(np.float16)), "half"), tiny, examples=2, dtypes=F32)
    assert report.exit_code == 2
    assert "dtype torch.float16, expected torch.float32" in report.text()


@pytest.mark.parametrize(
    "shape",
    ["one array", "a ModelOutput", "some hidden states by name", "every hidden state and the pooler"],
)
def test_each_output_form_is_compared_for_what_it_gives(shape, tiny):
    def factory(hf_model):
        hf_model.eval()

        def fn(input_ids, attention_mask, token_type_ids):
            args = dict(input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids)
            out = hf_model(**args, output_hidden_states=True, return_dict=True)
            if shape == "one array":
                return out.last_hidden_state
            if shape == "a ModelOutput":
                return hf_model(**args, return_dict=True)  # no hidden_states: the last and the pooler
            if shape == "some hidden states by name":
                return {"embed.out": out.hidden_states[0], "blocks.1.resid_post": out.hidden_states[2]}
            return {"hidden_states": out.hidden_states, "pooler_output": out.pooler_output}

        return fn

    report = run(ModelCandidate(factory, shape), tiny, examples=6)
    assert report.passed, report.text()
    compared, _ = report.outputs
    assert ("pooler_output" in compared) == (shape in ("a ModelOutput", "every hidden state and the pooler"))


def test_an_intermediate_given_without_its_layers_input_is_refused_saying_what_to_give(tiny):
    def factory(hf_model):
        def fn(input_ids, attention_mask, token_type_ids):
            out = hf_model(input_ids=input_ids, attention_mask=attention_mask, output_hidden_states=True)
            return {"last_hidden_state": out.last_hidden_state, "blocks.1.mlp_out": out.hidden_states[2]}

        return fn

    report = run(ModelCandidate(factory, "orphan"), tiny, examples=2, properties=["model-equivalence"])
    assert report.exit_code == 2
    assert "orphan gave blocks.1.mlp_out without hidden state 1, the input of layer 1" in report.text()


# ---- what a candidate says it runs -----------------------------------------------------------------


def test_a_float32_only_engine_is_never_handed_float64_and_the_report_says_so(tiny):
    handed = set()

    @bertcheck.runs(dtypes=("float32",), max_tokens=40, max_batch=2)
    def factory(hf_model):
        handed.add(next(hf_model.parameters()).dtype)
        inner = _engine(lambda t: t.numpy())(hf_model)

        def fn(input_ids, attention_mask, token_type_ids):
            assert input_ids.shape[0] <= 2 and input_ids.shape[1] <= 40, input_ids.shape  # never drawn
            return inner(input_ids, attention_mask, token_type_ids)

        return fn

    report = run(ModelCandidate(factory, "f32"), tiny, examples=12)  # float32 and float64 asked
    assert report.passed, report.text()
    assert handed == {torch.float32}
    assert report.left_out == [
        "float64 (it runs float32)",
        "inputs of 41-512 tokens (it takes up to 40)",
        "batches of 3-8 (it takes up to 2)",
    ]
    assert "not drawn, outside what the candidate declares it runs: float64 (it runs float32)" in report.text()


def test_asking_only_for_what_a_candidate_does_not_run_is_refused_before_anything_runs(tiny):
    factory = bertcheck.runs(dtypes=["float32"])(_engine(lambda t: t))
    with pytest.raises(FactoryError, match="declares it runs dtypes float32 on devices any"):
        run(ModelCandidate(factory), tiny, dtypes=(torch.float64,))


@pytest.mark.parametrize(
    "wrong, message",
    [
        (dict(dtypes=["float8"]), "dtype 'float8' is not one of"),
        (dict(max_tokens=0), "max_tokens=0 must be a whole number of at least 1"),
        (dict(devices=[]), "must name at least one each"),
    ],
)
def test_a_mistaken_declaration_is_an_error_where_it_is_made(wrong, message):
    with pytest.raises(ValueError, match=message):
        bertcheck.runs(**wrong)


def test_a_layer_candidate_declaring_its_limits_is_drawn_inside_them(tiny):
    from bertcheck.subjects.candidate import LayerCandidate

    @bertcheck.runs(dtypes=["float64"], max_tokens=20, max_batch=2)
    def factory(hf_layer, config):
        inner = impls.functional_layer(hf_layer, config)

        def fn(hidden_states, attention_mask):
            B, T, _ = hidden_states.shape
            assert hidden_states.dtype == torch.float64 and B <= 2 and T <= 20, hidden_states.shape
            return inner(hidden_states, attention_mask)

        return fn

    report = run(LayerCandidate(factory, "small"), tiny, examples=10)
    assert report.passed, report.text()


# ---- end to end: the tolerance, and the diagnosis ---------------------------------------------------


def test_a_faithful_engine_in_plain_torch_ops_passes_end_to_end(tiny, minilm):
    for bert in (tiny, minilm):
        report = run(ModelCandidate(impls.faithful_engine, "engine"), bert, examples=10)
        assert report.passed, report.text()


def _failed_and_explained(cand, bert, named: str):
    """`cand` fails model-equivalence on `bert`, and its diagnosis explains it by the entry `named` alone;
    the result and its report's lines."""
    # 20 s: shrinking a batch of sentence pairs takes ~300 examples; cut short, the smallest is diagnosed.
    report = run(cand, bert, examples=10, properties=["model-equivalence"], max_time=20)
    (result,) = report.results
    assert result.failure is not None, report.text()
    lines = result.failure.report().splitlines()
    explained = [line.strip() for line in lines if line.endswith("<- explains it")]
    assert len(explained) == 1 and explained[0].startswith(named), "\n".join(lines)
    return result, lines


@pytest.mark.parametrize("bug", list(impls.ENGINE_BUGS))
def test_each_known_deviation_planted_in_an_engine_fails_and_is_named(bug, minilm):
    factory, named = impls.ENGINE_BUGS[bug]
    result, lines = _failed_and_explained(ModelCandidate(factory, bug), minilm, named)
    # The failure is placed at the output it was seen in, never at a layer an end-to-end check cannot
    # single out; the pooler, fed the engine's own (right) last state, is a stage of its own.
    last = f"hidden_states[{minilm.config.num_hidden_layers}], end to end"
    assert result.failure.where == ("the pooler" if bug == "pooler without tanh" else last), lines[0]


@pytest.mark.parametrize("bug", list(impls.FAMILY_ENGINE_BUGS))
def test_a_bert_engine_pointed_at_a_family_member_fails_and_the_member_s_difference_is_named(bug, model_cache):
    from bertcheck.subjects.subject import Bert

    model_name, factory, named = impls.FAMILY_ENGINE_BUGS[bug]
    _failed_and_explained(ModelCandidate(factory, bug), Bert.once(model_name, model_cache), named)


def test_an_albert_export_that_unrolls_its_shared_layers_as_transformers_does_passes_end_to_end(model_cache):
    from bertcheck.subjects.subject import Bert

    report = run(ModelCandidate(impls.ALBERT_EXPORT, "albert export"), Bert.once("random:albert-tiny", model_cache))
    assert report.passed, report.text()


def test_a_diagnosis_runs_one_reference_forward_per_catalogue_entry_reusing_the_specs(tiny, monkeypatch):
    from bertcheck.spec import deviations

    exact = tiny.reference(torch.float64)
    inputs = tiny.encode(Case(("where is the bank?", "by the river")))
    last = [state_name(tiny.config.num_hidden_layers)]
    spec = deviations.run_to(exact, inputs, last)
    calls = []
    real_run_to = deviations.run_to
    monkeypatch.setattr(deviations, "run_to", lambda *a: calls.append(1) or real_run_to(*a))
    given = {last[0]: spec[last[0]].float() + 1e-3}
    explained = deviations.explain(exact, inputs, given, inputs["attention_mask"].bool(), spec=spec)
    assert len(calls) == sum(d.applies(exact, last) for d in CATALOGUE) == len(explained.variants)
    assert explained.spec == pytest.approx(1e-3, rel=1e-3)
    calls.clear()
    deviations.explain(exact, inputs, given, inputs["attention_mask"].bool())  # without: the spec's forward too
    assert len(calls) == len(explained.variants) + 1


def test_the_catalogue_and_the_planted_engines_name_the_same_deviations():
    planted = {named for _, named in impls.ENGINE_BUGS.values()} | {b[2] for b in impls.FAMILY_ENGINE_BUGS.values()}
    assert planted == {d.name for d in CATALOGUE} - {
        "a -10000 attention mask instead of the dtype's minimum"  # the classic mask: a correct BERT on real inputs
    }


def test_a_minus_10000_mask_is_a_correct_bert_on_real_inputs(tiny):
    report = run(ModelCandidate(impls.engine(mask_value=-10000.0), "-1e4"), tiny, examples=10)
    assert report.passed, report.text()


# ---- real exports, as users ship them ---------------------------------------------------------------


def _verify(*args):
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": ROOT}
    return subprocess.run(
        [sys.executable, "-m", "bertcheck", "verify", *args], capture_output=True, text=True, env=env, cwd=ROOT
    )


@ONNX
@pytest.mark.parametrize("model", ["minilm", "random:bert-base-uncased"])
def test_an_onnx_export_of_last_state_and_pooler_passes_verify(model):
    done = _verify("--model-impl", "tests.candidates:onnx_export", "--model", model, "--dtype", "float32")
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "outputs compared: hidden_states[" in done.stdout and "(last_hidden_state), pooler_output" in done.stdout


@ONNX
def test_its_int8_quantized_version_fails_by_a_wide_margin_with_no_known_deviation_to_blame():
    done = _verify(
        "--model-impl",
        "tests.candidates:onnx_export_int8",
        "--model",
        "minilm",
        "--property",
        "model-equivalence",
    )
    assert done.returncode == 1, done.stdout[-3000:] + done.stderr[-3000:]
    assert "No known deviation explains it" in done.stdout
    assert "float64 (it runs float32)" in done.stdout


def test_an_engine_whose_pooler_sees_the_rest_of_its_batch_fails_batching_at_the_pooler(tiny):
    def factory(hf_model):
        hf_model.eval()

        def fn(input_ids, attention_mask, token_type_ids):
            out = _states(hf_model, input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids)
            pooled = out.pooler_output + 1e-3 * out.pooler_output.mean(dim=0, keepdim=True)  # rows see each other
            return {"last_hidden_state": out.last_hidden_state.numpy(), "pooler_output": pooled.numpy()}

        return fn

    report = run(ModelCandidate(factory, "mixing pooler"), tiny, examples=10, properties=["batching"])
    (result,) = report.results
    assert result.failure is not None, report.text()
    assert (result.failure.where, result.failure.activation) == ("the pooler", "pooler.out"), result.failure.report()
    assert "(pooler_output)" in result.failure.report()
