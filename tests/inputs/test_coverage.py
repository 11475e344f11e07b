"""Coverage by construction: every input class a property's strategy can draw is drawn within its
default budget, a bug that shows in one class only is caught there, and the run says what it drew."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import candidates as impls
from bertcheck.inputs import coverage
from bertcheck.subjects.candidate import LayerCandidate, ModelCandidate
from bertcheck.inputs.strategies import _case_allowed, _layer_allowed, cases, layer_cases
from bertcheck.tools.verify import run

ROOT = Path(__file__).resolve().parents[2]
F32 = (torch.float32,)
LAYER_DIMS = {
    "length": coverage.LENGTHS,
    "batch": coverage.BATCHES,
    "padding": coverage.PADDINGS,
    "scale": coverage.SCALES,
}
CASE_DIMS = {"text": coverage.TEXTS, "batch": coverage.BATCHES}


@pytest.mark.parametrize("dims, allowed", [(LAYER_DIMS, _layer_allowed), (CASE_DIMS, _case_allowed)])
def test_a_covering_design_holds_every_class_at_strength_1_and_every_allowed_pair_at_strength_2(dims, allowed):
    for strength in (1, 2):
        rows = coverage.rows(dims, strength, allowed)
        assert all(allowed(row) for row in rows)
        assert rows == coverage.rows(dims, strength, allowed)  # deterministic: the same rows every run
        for a, b in itertools.combinations(dims, 2) if strength == 2 else [(d, d) for d in dims]:
            for x, y in itertools.product(dims[a], dims[b]):
                wanted = {a: x, b: y}
                possible = any(allowed({**wanted, **rest}) for rest in _every_row(dims, wanted))
                held = any(all(row[k] == v for k, v in wanted.items()) for row in rows)
                assert held == possible or (a == b and x != y), (strength, wanted)
    assert len(coverage.rows(dims, 1, allowed)) <= 5  # every class in a handful of examples


def _every_row(dims, fixed):
    rest = [d for d in dims if d not in fixed]
    for values in itertools.product(*(dims[d] for d in rest)):
        yield dict(zip(rest, values))


def _drawn_under_forcing(strategy, shard: int = 0, count: int = 1, strength: int = 1) -> list[dict]:
    """Every row this shard forces, one Hypothesis run each: the classes each example drew."""
    seen = []

    def search(n):
        @settings(max_examples=n, database=None, derandomize=True)
        @given(strategy)
        def test(case):
            seen.append(dict(coverage._LAST[-1].classes))

        test()

    rows = coverage.rows_for_shard(search, shard, count, strength)
    assert not seen  # the probe draws nothing
    coverage.run_rows(search, rows, shard, count, strength)
    assert rows == len(seen)
    return seen


def test_a_forced_row_draws_inside_its_classes_and_never_the_simplest_input_there():
    strategy = layer_cases(n_layers=2, long=True, max_batch=8)
    drawn = _drawn_under_forcing(strategy)
    assert drawn == coverage.rows(LAYER_DIMS, 1, _layer_allowed)  # each row, in its classes
    assert {c for d in drawn for c in d.items()} >= {(d, c) for d, cs in LAYER_DIMS.items() for c in cs}

    cases_seen = []

    @settings(max_examples=1, database=None, derandomize=True)
    @given(strategy)
    def first(case):
        cases_seen.append(case)

    with coverage.forcing(0, 1, 3, 1):  # the row of long inputs: 128-511 tokens
        first()
    (case,) = cases_seen
    assert 128 <= case.tokens < 512 and (case.tokens, case.seed) != (128, 0), case  # not the simplest input there


def test_the_rows_are_spread_over_a_propertys_shards_each_drawn_once():
    strategy = cases(dtypes=st.just(torch.float32), devices=st.just("cpu"))
    whole = _drawn_under_forcing(strategy)
    parts = [row for k in range(4) for row in _drawn_under_forcing(strategy, k, 4)]
    assert sorted(map(sorted, (r.items() for r in parts))) == sorted(map(sorted, (r.items() for r in whole)))
    pairs = _drawn_under_forcing(strategy, strength=2)
    assert len(pairs) == len(coverage.rows(CASE_DIMS, 2, _case_allowed)) > len(whole)


def test_a_property_drawing_from_its_own_strategy_has_no_rows_and_its_probe_is_an_example():
    ran = []

    def search(n):
        @settings(max_examples=n, database=None)
        @given(st.integers())
        def test(x):
            ran.append(x)

        test()

    assert coverage.rows_for_shard(search) == 0 and len(ran) == 1


def test_an_example_counts_under_its_own_classes_only_never_under_those_of_an_earlier_draw(tiny):
    """A test that draws a layer case and then runs a model property on a sentence of its own: the
    layer case's classes were counted under the model property (seen in this suite's own summary)."""
    from bertcheck.inputs.cases import Case
    from bertcheck.properties.registry import run_model_property

    drawn = []

    @settings(max_examples=1, database=None)
    @given(layer_cases(n_layers=2))
    def draw(case):
        drawn.append(case)

    draw()
    before = {k: dict(v) for k, v in coverage.COUNTS.items()}
    run_model_property(tiny, Case(("a sentence of its own",)), "hidden-states")
    assert coverage.COUNTS == before  # not drawn by a strategy: no classes to count

    @settings(max_examples=1, database=None)
    @given(cases(max_batch=2, long=False, dtypes=st.just(torch.float32), devices=st.just("cpu")))
    def run_drawn(case):
        run_model_property(tiny, case, "hidden-states")

    run_drawn()
    counted = coverage.COUNTS[("hidden-states", "random:tiny")]
    assert not any(c.startswith(("length=", "scale=")) for c in counted), counted


# ---- a bug in one class only is caught at the default budget -----------------------------------------


# A layer candidate wrong in one class only, and the property that must catch it (among any others).
LAYER_CLASS_BUGS = {
    "keys_past_128_masked": "layer-equivalence",
    "off_at_low_variance": "layer-equivalence",
    "off_at_batch_4_to_8": "layer-equivalence",
    "off_at_17_to_127_tokens": "layer-equivalence",
    "nan_on_fully_padded_rows": "layer-equivalence",
    "torch_encoder_layer_as_is": "layer-equivalence",  # PyTorch's own layer, mask handed over as it is
}
# Model candidates. A text always has real tokens: a fully padded row is one the padding property
# appends to every example of up to 128 tokens.
MODEL_CLASS_BUGS = {
    "model_off_on_pairs": "model-equivalence",
    "model_off_at_batch_4_to_8": "model-equivalence",
    "model_off_past_128_tokens": "model-equivalence",
    "model_nan_on_fully_padded_rows": "padding",
}


@pytest.mark.parametrize("factory", LAYER_CLASS_BUGS)
def test_a_layer_wrong_in_one_input_class_only_fails_verify_at_the_default_budget(factory, tiny):
    report = run(LayerCandidate(getattr(impls, factory), factory), tiny, dtypes=F32)  # 25 examples, the default
    assert not report.passed, report.text()
    caught = [r for r in report.results if r.failure is not None]
    assert any(r.property == LAYER_CLASS_BUGS[factory] for r in caught), report.text()


@pytest.mark.parametrize("factory", MODEL_CLASS_BUGS)
def test_a_model_wrong_in_one_input_class_only_fails_verify_at_the_default_budget(factory, tiny):
    report = run(ModelCandidate(getattr(impls, factory), factory), tiny, dtypes=F32)
    assert not report.passed, report.text()
    caught = [r for r in report.results if r.failure is not None]
    assert any(r.property == MODEL_CLASS_BUGS[factory] for r in caught), report.text()


PLANT = """
import sys
import pytest
sys.path.insert(0, {tests!r})
import mutants

@pytest.fixture(autouse=True)
def planted(request):
    if "bert" in request.fixturenames:
        model = request.getfixturevalue("bert").model()
        if not getattr(model, "planted", False):
            layers = range(model.config.num_hidden_layers)
            {plant}
            model.planted = True
"""

# HF's model wrong in one input class only (`tests/mutants.py`), the property file whose default budget
# must meet that class, and what its failure says. A layer property draws its layer: those bugs sit in
# every layer.
HF_CLASS_BUGS = {
    "past 128 tokens": (
        "mutants.wrong_past_128_tokens(model, 1)",
        "test_hidden_states.py",
        "per-layer equivalence with hidden_states' failed at layer 1",
    ),
    "batch 4-8": (
        "mutants.wrong_at_batch_4_to_8(model, 1)",
        "test_hidden_states.py",
        "per-layer equivalence with hidden_states' failed at layer 1",
    ),
    "pairs": (
        "mutants.wrong_on_pairs(model)",
        "test_hidden_states.py",
        "per-layer equivalence with hidden_states' failed at embeddings",
    ),
    "low variance": (
        "[mutants.wrong_at_low_variance(model, i) for i in layers]",
        "test_layer_metamorphic.py",
        "layer equivalence with the spec' failed at layer",
    ),
    "a fully padded row": (
        "[mutants.nan_on_fully_padded_rows(model, i) for i in layers]",
        "test_layer_metamorphic.py",
        "layer equivalence with the spec' failed at layer",
    ),
}


@pytest.mark.parametrize("mutant", HF_CLASS_BUGS)
def test_hfs_model_wrong_in_one_input_class_only_fails_its_property_at_the_default_budget(
    pytester, monkeypatch, mutant
):
    # Shrinking a 520-700 word text takes each failing shard to its 60 s budget; 2 s keeps this test short.
    monkeypatch.setenv("BERTCHECK_SHRINK_SECONDS", "2")
    plant, path, says = HF_CLASS_BUGS[mutant]
    pytester.makepyfile(planted_bug=PLANT.format(tests=str(ROOT / "tests"), plant=plant))  # a plugin: -p below
    result = pytester.runpytest_subprocess(
        str(ROOT / "properties" / path),
        *(["-k", "each_layer_equals_the_reference"] if "layer" in path else []),
        "--bert-model",
        "random:tiny",
        "-p",
        "planted_bug",
        "-p",
        "no:cacheprovider",
    )
    # At least the shard whose row is of that class (random draws in the others may meet one too).
    assert result.parseoutcomes().get("failed", 0) >= 1, result.stdout.str()[-3000:]
    result.stdout.fnmatch_lines([f"*Property '{says}*"])


def test_a_layer_candidate_wrong_past_128_tokens_fails_the_properties_run_by_pytest(pytester):
    result = pytester.runpytest_subprocess(
        str(ROOT / "properties" / "test_candidate.py"),
        "-k",
        "candidate_layer_equals_the_spec",
        "--bert-model",
        "random:tiny",
        "--bert-impl",
        "tests.candidates:keys_past_128_masked",
        "-p",
        "no:cacheprovider",
    )
    assert result.ret == 1
    result.stdout.fnmatch_lines(["*Property 'layer equivalence with the spec' failed at layer*"])


# ---- the run says what it drew ---------------------------------------------------------------------


@pytest.mark.parametrize("profile", ["ci", "dev"])
def test_under_the_everyday_profiles_every_property_draws_every_input_class_its_inputs_can_take(pytester, profile):
    result = pytester.runpytest_subprocess(
        str(ROOT / "properties"),
        "--bert-model",
        "random:tiny",
        "--hypothesis-profile",
        profile,
        "-p",
        "no:cacheprovider",
        "-n",
        "2",
    )
    out = result.stdout.str()
    assert result.ret == 0, out[-3000:]
    assert "input classes drawn per property" in out
    section = out.split("input classes drawn per property")[1]
    lines = [line for line in section.splitlines() if line.startswith("  ") and "[random:tiny]" in line]
    assert len(lines) >= 30, section[:3000]
    assert all("NEVER" not in line for line in lines), "\n".join(line for line in lines if "NEVER" in line)
    assert "never drew some class" not in out
