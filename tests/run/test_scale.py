"""Scale: shards, one forward shared by the read-only properties, the model store, the memory budget."""

import json

import pytest
import torch

# Inner pytest runs are in-process: everything heavy is imported before any (see test_plugin).
import bertcheck.properties.one_forward  # noqa: F401
from bertcheck.subjects import memory, subject
from bertcheck.run import split
from bertcheck.subjects.candidate import LayerCandidate, ModelCandidate, reads_only
from bertcheck.inputs.cases import Case
from bertcheck.properties.one_forward import READ_ONLY
from bertcheck.properties.registry import run_model_property
from bertcheck.properties.failures import PropertyFailure
from bertcheck.spec.reference import ReferenceBert
from bertcheck.run.scheduling import OneForwardScheduling
from bertcheck.inputs.shards import Shard, shards_for
from transformers import BertModel, BertTokenizerFast  # noqa: F401

SEED = Case(("this is a test sentence", "short"))


# ---- shards ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("max_examples", [1, 7, 10, 25, 50, 250])
def test_shards_run_at_least_the_profiles_examples_in_items_of_at_most_seven(max_examples):
    shards = shards_for(max_examples)
    per_shard = shards[0].examples(max_examples)
    assert per_shard <= 7 and per_shard * len(shards) >= max_examples
    assert per_shard * (len(shards) - 1) < max_examples  # no shard is spare


def test_each_shard_draws_one_dtype_and_the_shards_alternate():
    dtypes = (torch.float32, torch.float64)
    assert [Shard(i, 4).pick(dtypes) for i in range(4)] == [torch.float32, torch.float64] * 2


SHARDED = """
import json, os
import pytest
from hypothesis import example, given, settings
from bertcheck.inputs.cases import Case
from bertcheck.properties.registry import run_model_property
from bertcheck.inputs.strategies import cases

@settings(max_examples=20, database=None, derandomize=True)
@given(case=cases(long=False, max_batch=2))
@example(case=Case(("an explicit example",)))
def test_hidden_states(bert, case, request):
    run_model_property(bert, case, "hidden-states")
    with open(os.environ["SEEN"], "a") as f:
        f.write(json.dumps([request.node.callspec.id, str(case.dtype), case.texts == ("an explicit example",)]) + "\\n")
"""


@pytest.fixture
def isolated_models(monkeypatch):
    monkeypatch.setattr(subject, "_LOADED", {})
    monkeypatch.delenv("BERTCHECK_MODEL", raising=False)


def test_a_property_runs_as_shards_with_one_dtype_each_and_its_explicit_examples_once(
    pytester, isolated_models, tmp_path, monkeypatch
):
    seen, stats = tmp_path / "seen.jsonl", tmp_path / "stats.json"
    monkeypatch.setenv("SEEN", str(seen))
    monkeypatch.setenv("BERTCHECK_STATS", str(stats))
    pytester.makepyfile(test_p=SHARDED)
    result = pytester.runpytest(
        "test_p.py", "--bert-model", "random:tiny", "-v", "-p", "no:cacheprovider", "-p", "bertcheck.tools.benchstats"
    )
    result.assert_outcomes(passed=3)  # 20 examples: 3 shards of 7
    result.stdout.fnmatch_lines(["*test_hidden_states?random:tiny-shard1of3? PASSED*", "*shard3of3? PASSED*"])
    rows = [json.loads(line) for line in seen.read_text().splitlines()]
    dtypes = {}
    for item, dtype, explicit in rows:
        if not explicit:
            dtypes.setdefault(item, set()).add(dtype)
    assert dtypes == {
        "random:tiny-shard1of3": {"torch.float32"},
        "random:tiny-shard2of3": {"torch.float64"},
        "random:tiny-shard3of3": {"torch.float32"},
    }
    assert [item for item, _, explicit in rows if explicit] == ["random:tiny-shard1of3"]
    examples = {(c, m): n for c, m, n in json.loads(stats.read_text())["examples"]}
    assert examples[("hidden-states", "random:tiny")] >= 20


# ---- one forward for the read-only properties -------------------------------------------------------


def _forwards(model) -> list:
    calls = []
    model.register_forward_pre_hook(lambda module, args: calls.append(1))
    return calls


def test_the_read_only_properties_share_one_forward_per_input_where_the_model_shares_observations(fresh):
    bert = fresh()
    bert.shares_observations = True
    calls = _forwards(bert.model())
    for key in READ_ONLY:
        run_model_property(bert, SEED, key)
    assert len(calls) == 1


def test_sharing_a_forward_each_read_only_property_still_fails_under_its_own_name(fresh):
    import mutants

    bert = fresh()
    bert.shares_observations = True
    mutants.attention_residual_dropped(bert.model(), 1)
    failures = {}
    for key in READ_ONLY:
        try:
            run_model_property(bert, SEED, key)
        except PropertyFailure as err:
            failures[key] = err
    assert set(failures) == {"residual-identity", "hidden-states"}
    assert (failures["residual-identity"].where, failures["residual-identity"].activation) == (
        "layer 1",
        "blocks.1.ln1_in",
    )
    assert failures["hidden-states"].where == "layer 1"
    for key, failure in failures.items():
        assert f"check {key} " in str(failure)  # each one's own reproduce line


def test_a_module_that_runs_again_after_its_layer_was_read_fails_the_properties_that_read_it(fresh):
    bert = fresh()
    layer = bert.model().encoder.layer[0]
    original = type(layer.output).forward

    def forward(self, hidden_states, input_tensor):  # runs LN2 a second time, after the layer's output
        out = original(self, hidden_states, input_tensor)
        self.LayerNorm(out)
        return out

    layer.output.forward = forward.__get__(layer.output)
    with pytest.raises(PropertyFailure, match="ran 2 times"):
        run_model_property(bert, SEED, "layernorm")


def test_read_only_items_of_one_model_and_shard_are_one_scheduling_unit():
    scope = OneForwardScheduling._split_scope
    a = "properties/test_layernorm.py::test_x[minilm-shard2of4-one-forward]"
    b = "properties/test_hidden_states.py::test_y[minilm-shard2of4-one-forward]"
    assert scope(None, a) == scope(None, b) != scope(None, a.replace("shard2", "shard3"))
    other = "properties/test_attention.py::test_z[minilm-shard2of4]"
    assert scope(None, other) == other


def test_the_input_forms_of_one_model_and_shard_are_one_scheduling_unit_apart_from_the_read_only_one():
    scope = OneForwardScheduling._split_scope
    form = "properties/test_input_forms.py::test_f[random:bert-base-uncased-shard2of4-plain-call-{}]"
    assert scope(None, form.format("mask-bool")) == scope(None, form.format("inputs-embeds"))
    assert scope(None, form.format("mask-bool")) != scope(None, form.format("mask-bool").replace("shard2", "shard3"))
    read_only = "properties/test_layernorm.py::test_x[random:bert-base-uncased-shard2of4-one-forward]"
    assert scope(None, form.format("mask-bool")) != scope(None, read_only)
    assert split.property_key(form.format("mask-bool")).endswith("test_f[random:bert-base-uncased-mask-bool]")


def test_a_property_in_a_group_bertcheck_does_not_have_stops_the_run_in_one_line(pytester, isolated_models):
    pytester.makepyfile(
        test_p="import pytest\nfrom hypothesis import given, strategies as st\n\n"
        "@pytest.mark.shares_forward('one-backward')\n@given(st.integers())\ndef test_x(bert, x):\n    pass\n"
    )
    result = pytester.runpytest("test_p.py", "--bert-model", "random:tiny", "-p", "no:cacheprovider")
    assert result.ret == pytest.ExitCode.INTERRUPTED  # a collection error: the run stops before any test
    result.stdout.fnmatch_lines(["*test_x: shares_forward('one-backward'): the groups are one-forward, plain-call"])
    assert "Traceback" not in result.stdout.str() and "plugin.py" not in result.stdout.str()


STORED = """
import pytest
from hypothesis import given, settings
from bertcheck.properties.registry import run_model_property
from bertcheck.inputs.strategies import cases

@pytest.mark.parametrize("release", ["has-it", pytest.param("lacks-it", marks=pytest.mark.skip(reason="lacks it"))])
@settings(max_examples=3, database=None, derandomize=True)
@given(case=cases(long=False, max_batch=1))
def test_hidden_states(bert, release, case):
    run_model_property(bert, case, "hidden-states")
"""


def test_stored_durations_price_what_ran_per_example_and_leave_out_what_skipped(
    pytester, isolated_models, tmp_path, monkeypatch
):
    # In process, the items this worker ran before were reported to the same plugin module: the plugin
    # starts each run's timings afresh (pytest_configure), or this run would store theirs too.
    pytester.makepyfile(test_p=STORED)
    out = tmp_path / "durations.json"
    result = pytester.runpytest(
        "test_p.py", "--bert-model", "random:tiny", "-p", "no:cacheprovider", "--bert-store-durations", str(out)
    )
    result.assert_outcomes(passed=1, skipped=1)
    stored = split.Durations.load(out)
    assert list(stored.per_example_s) == ["test_p.py::test_hidden_states[random:tiny-has-it]"]
    assert stored.per_example_s["test_p.py::test_hidden_states[random:tiny-has-it]"] > 0
    assert not stored.per_item_s  # the skipped item cost nothing it would cost where it runs
    assert stored.about["models"] == ["random:tiny"]


FORMS_SHARING = """
import json, os
import pytest
from hypothesis import given, settings
from bertcheck.properties import input_forms
from bertcheck.properties.input_forms import FORMS, key_of
from bertcheck.properties.registry import run_model_property
from bertcheck.inputs.shards import PLAIN_CALL
from bertcheck.inputs.strategies import cases

FORWARDS = []

@pytest.mark.shares_forward(PLAIN_CALL)
@pytest.mark.parametrize("form", ["mask-int32", "mask-bool", "return-tuple"])
@settings(max_examples=14, database=None, derandomize=True)
@given(case=cases(long=False, max_batch=2))
def test_form(bert, form, case, request):
    if not FORWARDS:
        bert.model().register_forward_pre_hook(lambda module, args: FORWARDS.append(1))
    before, kept = len(FORWARDS), sum(len(inputs) for inputs in input_forms._PLAIN.values())
    run_model_property(bert, case, key_of(FORMS[form]))
    with open(os.environ["SEEN"], "a") as f:
        f.write(json.dumps([request.node.callspec.id, repr(case), len(FORWARDS) - before, kept]) + "\\n")
"""


def test_the_forms_of_one_shard_draw_the_same_inputs_and_run_the_plain_call_once_for_all_of_them(
    pytester, isolated_models, tmp_path, monkeypatch
):
    from bertcheck.properties import input_forms
    from bertcheck.subjects._compat import attention_implementations

    input_forms.forget_plain()  # what this worker's earlier tests kept: the inner run starts with nothing
    seen = tmp_path / "seen.jsonl"
    monkeypatch.setenv("SEEN", str(seen))
    pytester.makepyfile(test_p=FORMS_SHARING)
    result = pytester.runpytest("test_p.py", "--bert-model", "random:tiny", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=6)  # 2 shards x 3 forms
    rows = [json.loads(line) for line in seen.read_text().splitlines()]
    implementations = len(attention_implementations())
    for shard in ("shard1of2", "shard2of2"):
        first, *rest = (
            [(case, forwards) for item, case, forwards, _ in rows if item == f"random:tiny-{shard}-plain-call-{form}"]
            for form in ("mask-int32", "mask-bool", "return-tuple")
        )
        # A unit starts with nothing kept: the last unit's plain calls were forgotten where it ended.
        assert next(kept for item, _, _, kept in rows if shard in item) == 0
        assert len(first) >= 7 and all([case for case, _ in other] == [case for case, _ in first] for other in rest)
        # The first form runs its own call and the plain call on each implementation; the others, which
        # draw the same inputs, their own call alone: the plain call's outputs are shared.
        assert sum(forwards for _, forwards in first) == implementations * (
            len(first) + len({case for case, _ in first})
        ), first
        assert all({forwards for _, forwards in other} == {implementations} for other in rest), rest


# ---- the model store ------------------------------------------------------------------------------


def test_float64_is_the_loaded_model_converted_in_place_and_back_exactly(fresh):
    bert = fresh()
    model = bert.model()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    assert bert.model(torch.float64) is model and next(model.parameters()).dtype == torch.float64
    assert bert.model(torch.float32) is model
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())


def test_a_lossy_dtype_is_a_copy_and_a_worker_holds_one_copy_per_device(fresh):
    bert = fresh()
    bf16 = bert.model(torch.bfloat16)
    assert bf16 is not bert.model() and next(bf16.parameters()).dtype == torch.bfloat16
    bert.model(torch.float16)
    assert (torch.bfloat16, "cpu") not in bert._models and (torch.float16, "cpu") in bert._models


def test_a_lazy_reference_computes_what_a_converted_one_does(tiny):
    x = torch.randn(2, 5, tiny.config.hidden_size, dtype=torch.float64)
    mask = torch.ones(2, 5, dtype=torch.long)
    lazy = ReferenceBert.from_hf(tiny.model(), dtype=torch.float64, lazy=True).layer(1, x, mask)
    eager = ReferenceBert.from_hf(tiny.model(), dtype=torch.float64).layer(1, x, mask)
    assert all(torch.equal(lazy[k], eager[k]) for k in eager)


def test_attention_switches_in_place_and_back(tiny):
    from bertcheck.subjects._compat import attention_implementations

    own = tiny.model().config._attn_implementation if hasattr(tiny.model().config, "_attn_implementation") else "eager"
    for implementation in attention_implementations():
        with tiny.attention(implementation) as model:
            assert model is tiny.model()
    assert getattr(tiny.model().config, "_attn_implementation", "eager") == own


def test_a_reads_only_factory_is_handed_the_model_itself_and_any_other_a_copy(tiny):
    handed = []

    def factory(layer, config):
        handed.append(layer)
        return lambda x, mask: x

    layer = tiny.model().encoder.layer[0]
    LayerCandidate(factory).build(layer, tiny.config)
    LayerCandidate(reads_only(factory)).build(layer, tiny.config)
    assert handed[0] is not layer and handed[1] is layer


def test_a_model_factory_given_a_copy_in_float64_gets_one_from_the_model_as_loaded_which_stays_float32(fresh):
    """A float64 copy of bert-base beside the model converted to float64 was 1.8 GB of weights: a worker
    past its 2 GiB on every model candidate's float64 item (1.3 GB beside the float32 model)."""
    bert = fresh()
    handed = []

    def factory(model):
        handed.append(model)
        return lambda ids, mask, types: (
            model(input_ids=ids, attention_mask=mask, token_type_ids=types, output_hidden_states=True).hidden_states
        )

    cand = ModelCandidate(factory)
    bert.model(torch.float64)  # the loaded model converted in place, as an HF item left it
    case = Case(SEED.texts, dtype=torch.float64)
    assert run_model_property(bert, case, "model-equivalence", cand) <= 1.0
    (copy,) = handed
    assert next(copy.parameters()).dtype == torch.float64
    assert list(bert._models) == [(torch.float32, "cpu")]  # converted back, exactly, and no float64 model
    assert run_model_property(bert, case, "model-equivalence", cand) <= 1.0 and len(handed) == 1  # kept
    bert.release_copies()  # between items: the build over the copy goes with the other copies
    assert run_model_property(bert, case, "model-equivalence", cand) <= 1.0 and len(handed) == 2


# ---- gradients --------------------------------------------------------------------------------------


def test_gradients_hold_the_weight_gradients_of_two_layers_at_most_never_a_models_worth(fresh, monkeypatch):
    from bertcheck.properties import hf_properties

    bert = fresh("minilm", torch.float64)  # 6 layers: enough to tell streaming from holding
    model = bert.model(torch.float64)
    layers_alive, judge = [], hf_properties._GradientPairs._judge

    def counting(self, key):
        # Which layers have a weight gradient alive on either side, the moment one more arrives.
        alive = {
            k.split(".")[2]
            for k, pair in self.pairs.items()
            if k.startswith("encoder.layer.") and any(t.grad is not None for t in pair)
        }
        layers_alive.append(len(alive))
        judge(self, key)

    monkeypatch.setattr(hf_properties._GradientPairs, "_judge", counting)
    assert run_model_property(bert, Case(SEED.texts, dtype=torch.float64), "gradients") <= 1.0
    assert layers_alive and max(layers_alive) <= 2, layers_alive
    assert all(p.grad is None for p in model.parameters())  # nothing left behind on the shared model


def test_a_layer_hf_skips_still_runs_in_the_reference_and_the_gradients_say_so(fresh):
    import mutants

    bert = fresh("random:tiny", torch.float64)
    mutants.layer_output_dropped(bert.model(torch.float64), 1)
    with pytest.raises(PropertyFailure) as caught:
        run_model_property(bert, Case(SEED.texts, dtype=torch.float64), "gradients")
    assert caught.value.key == "gradients" and "d loss / d" in str(caught.value)


# ---- the memory budget ----------------------------------------------------------------------------


def test_a_worker_past_its_budget_names_the_item_its_largest_input_and_the_peak():
    memory.forget_inputs()
    memory.note_input(2, 16, torch.float32)
    memory.note_input(8, 512, torch.float64)
    memory.note_input(1, 7, torch.float32)
    said = memory.OverBudget(0.001).after("properties/test_x.py::test_y[minilm-shard1of4]")
    assert "test_y[minilm-shard1of4]" in said and "batch 8 x 512 tokens, float64" in said
    assert "budget of 0.001 GiB" in said and "peaked at" in said
    assert memory.OverBudget(10_000).after("anything") is None


def test_auto_starts_no_more_workers_than_fit_in_the_memory_available(monkeypatch):
    monkeypatch.setattr(memory, "cores", lambda: 16)
    monkeypatch.setattr(memory, "available_gib", lambda: 21.5)
    monkeypatch.setenv("BERTCHECK_WORKER_MEMORY", "2")
    assert memory.auto_workers()[0] == 10
    monkeypatch.setattr(memory, "available_gib", lambda: 100.0)
    assert memory.auto_workers()[0] == 16


@pytest.mark.parametrize("value", ["lots", "0", "-1", "nan", "inf"])
def test_a_bad_worker_budget_is_a_usage_error(pytester, isolated_models, monkeypatch, value):
    monkeypatch.setenv("BERTCHECK_WORKER_MEMORY", value)
    pytester.makepyfile(test_p="def test_nothing():\n    pass\n")
    result = pytester.runpytest("test_p.py", "--bert-model", "random:tiny")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        [
            "*BERTCHECK_WORKER_MEMORY*must be a positive, finite number of GiB*"
            if value != "lots"
            else "*BERTCHECK_WORKER_MEMORY='lots' is not a number*"
        ]
    )
    assert "Traceback" not in result.stdout.str() + result.stderr.str()


def test_a_project_that_does_not_ask_for_bertcheck_never_reads_its_worker_budget(
    pytester, isolated_models, monkeypatch
):
    monkeypatch.setenv("BERTCHECK_WORKER_MEMORY", "nan")
    pytester.makepyfile(test_p="def test_nothing():\n    pass\n")
    pytester.runpytest().assert_outcomes(passed=1)


def test_between_items_a_worker_keeps_the_loaded_model_and_releases_its_copies(fresh):
    bert = fresh()
    bert.model(torch.float64)
    bert.model(torch.bfloat16)
    bert.release_copies()
    assert list(bert._models) == [(torch.float64, "cpu")]  # the loaded model, converted in place, stays


def test_near_its_budget_a_process_trims_after_each_example(monkeypatch):
    trimmed = []
    monkeypatch.setattr(memory, "trim", lambda: trimmed.append(1))
    monkeypatch.setattr(memory, "_BUDGETS", [100.0])
    monkeypatch.setattr(memory, "_SINCE", {})
    memory.relieve()
    assert not trimmed
    monkeypatch.setattr(memory, "_BUDGETS", [0.001])
    memory.relieve()
    assert trimmed


def test_after_an_example_fed_a_full_length_row_a_process_trims_whatever_its_memory(monkeypatch):
    trimmed = []
    monkeypatch.setattr(memory, "trim", lambda: trimmed.append(1))
    monkeypatch.setattr(memory, "_BUDGETS", [100.0])
    monkeypatch.setattr(memory, "_SINCE", {})
    monkeypatch.setattr(memory, "_LARGEST", {})
    memory.note_input(2, 255, torch.float64)  # 510 tokens in all: a small example, no trim
    memory.relieve()
    assert not trimmed
    memory.note_input(1, 512, torch.float64)
    memory.note_input(1, 7, torch.float64)  # the example's largest input counts, not its last
    memory.relieve()
    assert trimmed == [1]
    memory.relieve()  # the next example fed nothing large
    assert trimmed == [1]
