"""The pytest plugin end to end, through real inner pytest runs."""

import pytest

# Inner runs are in-process, and pytester drops every module they import once they end: torch cannot
# be imported twice in one process, so everything heavy is imported here, before any inner run.
import bertcheck.properties.one_forward  # noqa: F401
import bertcheck.properties.registry  # noqa: F401
import bertcheck.subjects.subject  # noqa: F401
from bertcheck.subjects import subject
from transformers import BertModel, BertTokenizerFast  # noqa: F401

PASSING_PROPERTY = """
from hypothesis import given, settings
from bertcheck.properties.registry import run_model_property
from bertcheck.inputs.strategies import cases

@settings(max_examples=3, database=None)
@given(case=cases(long=False, max_batch=2))
def test_hidden_states(bert, case):
    run_model_property(bert, case, "hidden-states")
"""


@pytest.fixture(autouse=True)
def isolated_models(monkeypatch):
    # Inner runs share this process: give them their own model cache, so a broken model stays theirs.
    monkeypatch.setattr(subject, "_LOADED", {})
    monkeypatch.delenv("BERTCHECK_MODEL", raising=False)


def test_the_plugin_runs_a_property_on_the_model_named_by_the_option(pytester):
    pytester.makepyfile(test_p=PASSING_PROPERTY)
    result = pytester.runpytest("test_p.py", "--bert-model", "random:tiny", "-v")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["*test_hidden_states?random:tiny? PASSED*"])


def test_the_environment_variable_names_the_models_when_the_option_is_absent(pytester, monkeypatch):
    monkeypatch.setenv("BERTCHECK_MODEL", "random:tiny,minilm")
    pytester.makepyfile(test_p=PASSING_PROPERTY)
    result = pytester.runpytest("test_p.py", "-v")
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(["*?random:tiny? PASSED*", "*?minilm? PASSED*"])


@pytest.mark.parametrize(
    "model_name, message",
    [
        ("bert-huge", "unknown model"),
        ("./missing-checkpoint", "does not exist"),
        ("random:nope", "no random config 'nope'"),
    ],
)
def test_a_bad_model_stops_the_run_before_any_test_with_one_message(pytester, model_name, message):
    pytester.makepyfile(test_p=PASSING_PROPERTY)
    result = pytester.runpytest("--bert-model", model_name)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([f"ERROR: --bert-model '{model_name}': *{message}*"])
    assert "Traceback" not in result.stdout.str() + result.stderr.str()
    assert "collected" not in result.stdout.str()


def test_a_planted_bug_turns_the_run_red_with_the_report(pytester):
    pytester.makeconftest(
        """
import pytest

@pytest.fixture(autouse=True)
def drop_the_first_residual(bert):
    block = bert.model().encoder.layer[1].attention.output
    def forward(self, hidden_states, input_tensor):
        return self.LayerNorm(self.dropout(self.dense(hidden_states)))
    block.__class__ = type("NoResidual", (type(block),), {"forward": forward})
"""
    )
    pytester.makepyfile(
        test_p="""
from hypothesis import given, settings
from bertcheck.properties.registry import run_model_property
from bertcheck.inputs.strategies import cases

@settings(max_examples=5, database=None)
@given(case=cases(long=False))
def test_residual(bert, case):
    run_model_property(bert, case, "residual-identity")
"""
    )
    result = pytester.runpytest("test_p.py", "--bert-model", "random:tiny")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            "*Property 'residual identity' failed at layer 1, activation 'blocks.1.ln1_in'",
            "*expected: ln1_in == attn_out + resid_pre, bit for bit (eval mode)",
            "*Greatest absolute difference: * at index (0, *, *) (up to 0 allowed)",
            "*model: random:tiny   dtype: float*   device: cpu   batch: 1",
            # Shrunk to the smallest input: one empty sentence. ([[] is a literal [ for fnmatch.)
            "*python -m bertcheck check residual-identity --model random:tiny *--texts '[[]\"\"]'",
        ]
    )


def test_the_run_ends_with_the_worst_error_per_property_and_model(pytester):
    pytester.makepyfile(test_p=PASSING_PROPERTY)
    result = pytester.runpytest("test_p.py", "--bert-model", "random:tiny")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(
        [
            "*bertcheck: worst error per property, as a share of its tolerance (1 = the limit)*",
            "*property*random:tiny",
            "*hidden-states*0.*",
        ]
    )


PLANTED_NO_RESIDUAL = """
import pytest

@pytest.fixture(autouse=True)
def drop_the_first_residual(bert):
    block = bert.model().encoder.layer[1].attention.output
    if type(block).__name__ == "NoResidual":
        return
    def forward(self, hidden_states, input_tensor):
        return self.LayerNorm(self.dropout(self.dense(hidden_states)))
    block.__class__ = type("NoResidual", (type(block),), {"forward": forward})
"""
RESIDUAL_PROPERTY = """
from hypothesis import given, settings
from bertcheck.properties.registry import run_model_property
from bertcheck.inputs.strategies import cases

@settings(max_examples=5, database=None)
@given(case=cases(long=False))
def test_residual(bert, case):
    run_model_property(bert, case, "residual-identity")

@settings(max_examples=5, database=None)
@given(case=cases(long=False))
def test_residual_again(bert, case):
    run_model_property(bert, case, "residual-identity")
"""


@pytest.mark.parametrize("args", [(), ("-n", "2", "-x")], ids=" ".join)
def test_a_failed_property_shows_fail_in_the_worst_error_table_and_its_json_never_a_passing_number(
    pytester, capsys, args
):
    """Both items fail; under -x the workers stop at the first, before handing over their tables."""
    import json

    from bertcheck.tools import cli

    pytester.makeconftest(PLANTED_NO_RESIDUAL)
    pytester.makepyfile(test_p=RESIDUAL_PROPERTY)
    out = pytester.path / "worst.json"
    result = pytester.runpytest_subprocess(
        "test_p.py", "--bert-model", "random:tiny", "-p", "no:cacheprovider", "--bert-worst-json", str(out), *args
    )
    # xdist says INTERRUPTED where -x stopped it
    assert result.ret in (pytest.ExitCode.TESTS_FAILED, pytest.ExitCode.INTERRUPTED if "-x" in args else 1)
    result.stdout.fnmatch_lines(["*bertcheck: worst error per property*", "*residual-identity*FAIL"])
    assert json.loads(out.read_text())["worst"] == [["residual-identity", "random:tiny", "FAIL"]]
    capsys.readouterr()
    assert cli.main(["worst", str(out)]) == 0
    assert capsys.readouterr().out.splitlines()[-1].split() == ["residual-identity", "FAIL"]


# ---- bertcheck's Hypothesis profiles (tests/test_user_project.py: they apply to its items alone) ----

PROFILE_PROBE = """
from hypothesis import settings

def test_profile():
    s = settings.default
    print("PROFILE", settings._current_profile, s.max_examples, s.deadline, s.derandomize)
"""


def test_an_unknown_bertcheck_profile_stops_the_run_before_collection(pytester, monkeypatch):
    monkeypatch.setenv("BERTCHECK_PROFILE", "fastest")
    pytester.makepyfile(test_probe=PROFILE_PROBE)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*BERTCHECK_PROFILE='fastest' is not one of dev, ci, thorough, fleet*"])


def test_a_checkout_imported_without_being_installed_finds_its_properties_beside_the_package(monkeypatch):
    """`PYTHONPATH=. pytest -p bertcheck.plugin` on a machine where bertcheck is not installed (a GPU box
    the checkout was copied to): `bertcheck.suite` does not import there, and the plugin crashed
    with an AttributeError before collecting anything (seen on an H200)."""
    import importlib.util
    from pathlib import Path

    from bertcheck import plugin

    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "bertcheck.suite" else real(name, *a)
    )
    found = plugin.shipped_properties()
    assert found == (Path(plugin.__file__).resolve().parent.parent / "properties") and (found / "__init__.py").exists()
