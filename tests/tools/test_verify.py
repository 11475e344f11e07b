"""`bertcheck verify`, `bertcheck.check_layer` / `check_model`, the --bert-impl options, and every way a
candidate can be unusable: each a clear message naming the candidate, never a torch traceback."""

import shlex
import textwrap
from pathlib import Path

import pytest
import torch

import bertcheck
from bertcheck.inputs.profiles import PROFILES
from bertcheck.inputs.shards import shards_for
from bertcheck.tools import cli
from bertcheck.subjects.candidate import FactoryError, ModelCandidate, load_factory, reference_model
from bertcheck.inputs.cases import LayerCase, example_from_json, example_json
from bertcheck.tools.verify import run
from tests import candidates as impls

ROOT = Path(__file__).resolve().parents[2]


def _verify(capsys, *args):
    code = cli.main(["verify", "--model", "random:tiny", "--examples", "5", *args])
    out, err = capsys.readouterr()
    return code, out, err


# ---- the command ------------------------------------------------------------------------------------


def test_verify_prints_a_table_and_exits_0_when_every_property_holds(capsys, tiny):
    code, out, err = _verify(capsys, "--impl", "tests.candidates:torch_encoder_layer")
    assert code == 0, out + err
    assert "7 of 7 properties hold" in out
    header = out.splitlines()[1]
    assert header.split() == ["property", "result", "examples", "worst", "error", "counterexample", "(shrunk)"]
    assert out.count(" pass ") == 7


def test_verify_exits_1_with_the_shrunk_counterexample_and_a_command_that_reproduces_it(capsys, tiny):
    code, out, _ = _verify(
        capsys, "--impl", "tests.candidates:functional_layer_pre_ln", "--property", "layer-equivalence"
    )
    assert code == 1
    assert "layer-equivalence  FAIL" in out
    assert "Property 'layer equivalence with the spec' failed at layer" in out
    assert "Greatest absolute difference" in out
    command = out.split("Reproduce:\n  ")[1].splitlines()[0]
    args = shlex.split(command)
    assert args[:4] == ["python", "-m", "bertcheck", "verify"]
    assert cli.main(args[3:]) == 1  # the one command reproduces the failure, on its one example
    again, _ = capsys.readouterr()
    assert "1 examples" not in again and "layer-equivalence  FAIL    1 " in again


def test_verify_runs_a_model_factory(capsys, tiny):
    code, out, err = _verify(
        capsys, "--model-impl", "bertcheck.subjects.candidate:reference_model", "--dtype", "float32"
    )
    assert code == 0, out + err
    assert "4 of 4 properties hold" in out


@pytest.mark.parametrize(
    "path, says",
    [
        ("no_colon_here", "is not an import path: give module:attr"),
        ("no_such_package.layers:make", "no module named 'no_such_package'"),
        ("tests.candidates:no_such_factory", "has no attribute 'no_such_factory'"),
        ("tests.candidates:NOT_A_FACTORY", "is a str, not a factory"),
        ("tests.candidates:raising_factory", "raised NotImplementedError: fused kernel not built for this GPU"),
        ("tests.candidates:not_a_function", "returned int, not fn(hidden_states, attention_mask)"),
    ],
)
def test_a_candidate_that_cannot_run_at_all_exits_2_with_one_clear_line(capsys, tiny, path, says):
    code, out, err = _verify(capsys, "--impl", path)
    assert code == 2
    assert says in err and path.split(":")[0] in err
    assert "Traceback" not in out + err


@pytest.mark.parametrize(
    "factory, says",
    [
        ("transposed_layer", "returned resid_post with shape (1, 64, 1), expected (1, 1, 64)"),
        ("float64_layer", "dtype torch.float64, expected torch.float32 (the input's)"),
        ("raising_layer", "raised RuntimeError: CUDA error: illegal memory access on hidden states (1, 1, 64)"),
        ("meta_device_layer", "returned resid_post with device meta, expected cpu (the input's)"),
        ("tuple_layer", "returned tuple for resid_post, expected an array of shape (1, 1, 64)"),
        (
            "misnamed_intermediates",
            "returned a mapping with keys ['hidden']: it needs 'resid_post' and names from the vocabulary",
        ),
    ],
)
def test_a_candidate_that_breaks_the_protocol_on_an_input_exits_2_naming_it_and_the_input(capsys, tiny, factory, says):
    code, out, _ = _verify(
        capsys, "--impl", f"tests.candidates:{factory}", "--property", "batching", "--dtype", "float32"
    )
    assert code == 2
    assert "batching  ERROR" in out
    assert says in out and f"tests.candidates:{factory}" in out
    assert "candidate: tests.candidates:" in out and "hidden states: batch 1, tokens 1" in out


def test_a_model_candidate_missing_the_embeddings_says_how_many_states_it_gave(tiny):
    report = run(
        ModelCandidate(impls.missing_embeddings, "zoo:missing"),
        tiny,
        properties=["model-equivalence"],
        dtypes=(torch.float32,),
    )
    assert report.exit_code == 2
    assert (
        "zoo:missing returned 2 items as hidden states, expected 3: the embeddings, then each of 2 layers"
        in report.text()
    )


def test_an_import_that_raises_inside_the_users_module_is_named(tmp_path, monkeypatch):
    (tmp_path / "broken_port.py").write_text("import math\nraise ImportError('needs libfused.so')\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(
        FactoryError, match=r"broken_port:f: importing 'broken_port' raised ImportError: needs libfused.so"
    ):
        load_factory("broken_port:f")


def test_bad_arguments_exit_2(capsys, tiny):
    assert _verify(capsys, "--impl", "bertcheck.subjects.candidate:reference_layer", "--property", "nope")[0] == 2
    assert _verify(capsys, "--impl", "bertcheck.subjects.candidate:reference_layer", "--example", "{not json")[0] == 2
    assert _verify(capsys, "--impl", "bertcheck.subjects.candidate:reference_layer", "--examples", "0")[0] == 2
    code, _, err = _verify(capsys, "--impl", "bertcheck.subjects.candidate:reference_layer", "--model", "/no/such/dir")
    assert code == 2 and "bertcheck verify: --model '/no/such/dir': /no/such/dir does not exist" in err, err


def test_an_example_round_trips_through_json():
    case = LayerCase(layer=1, batch=2, tokens=9, pad=3, scale="low", seed=7, dtype=torch.float64)
    assert example_from_json("layer", example_json(case)) == case
    with pytest.raises(ValueError, match="need batch >= 1"):
        example_from_json("layer", '{"layer": 0, "batch": 1, "tokens": 2, "pad": 2, "scale": "unit", "seed": 0}')


# ---- the Python API ---------------------------------------------------------------------------------


def test_check_layer_returns_the_report_when_the_candidate_holds(tiny):
    report = bertcheck.check_layer(impls.torch_encoder_layer, tiny, examples=5)
    assert report.passed and len(report.results) == 7


def test_check_layer_raises_an_assertion_error_whose_message_is_the_report(tiny):
    with pytest.raises(bertcheck.CandidateFailed) as caught:
        bertcheck.check_layer(impls.BROKEN_LAYERS["tanh GELU"][0], tiny, examples=5, properties=["layer-equivalence"])
    assert isinstance(caught.value, AssertionError)
    assert "layer-equivalence  FAIL" in str(caught.value) and "blocks." in str(caught.value)


def test_check_model_accepts_a_model_name_string():
    assert bertcheck.check_model(reference_model, "random:tiny", examples=3, dtypes=(torch.float32,)).passed


# ---- the pytest options -----------------------------------------------------------------------------


def _suite(pytester):
    """A project of the user's with none of bertcheck's tests: the plugin collects the shipped properties."""
    pytester.makeini("[pytest]\naddopts = -p no:cacheprovider\n")
    pytester.syspathinsert(str(ROOT))


DEV_SHARDS = len(shards_for(PROFILES["dev"]["max_examples"]))


def test_bert_impl_runs_the_candidate_properties_on_the_users_factory(pytester):
    import torch  # noqa: F401 - pytester runs in-process: heavy imports first (see test_plugin)

    _suite(pytester)
    result = pytester.runpytest(
        "--bert-model",
        "random:tiny",
        "--bert-impl",
        "tests.candidates:torch_encoder_layer",
        "-k",
        "candidate_layer",
        "--hypothesis-profile",
        "dev",
    )
    result.assert_outcomes(passed=7 * DEV_SHARDS)  # each property's examples run as shards (bertcheck.inputs.shards)


def test_bert_impl_with_a_broken_layer_fails_naming_the_candidate_and_activation(pytester):
    import torch  # noqa: F401

    _suite(pytester)
    result = pytester.runpytest(
        "--bert-model",
        "random:tiny",
        "--bert-impl",
        "tests.candidates:functional_layer_pre_ln",
        "-k",
        "equals_the_spec",
        "--hypothesis-profile",
        "dev",
    )
    result.assert_outcomes(failed=DEV_SHARDS)  # every shard finds it
    result.stdout.fnmatch_lines(
        [
            "*Property 'layer equivalence with the spec' failed at layer *, activation 'blocks.*",
            "*candidate: tests.candidates:functional_layer_pre_ln (layer factory)*",
        ]
    )


def test_bert_impl_that_does_not_resolve_is_a_usage_error_before_collection(pytester):
    _suite(pytester)
    result = pytester.runpytest("--bert-impl", "no_such_package:make")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--bert-impl: no_such_package:make: cannot import 'no_such_package'*"])


def test_the_user_writes_a_factory_in_their_own_package_and_verifies_it(tmp_path, monkeypatch, capsys, tiny):
    """The README's worked example, verbatim in spirit: a package of the user's, `bertcheck verify`."""
    package = tmp_path / "my_bert"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "layer.py").write_text(textwrap.dedent(README_EXAMPLE))
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    code, out, err = _verify(capsys, "--impl", "my_bert.layer:make_layer")
    assert code == 0, out + err


README_EXAMPLE = (ROOT / "README.md").read_text().split("<!-- worked-example -->\n```python\n")[1].split("```")[0]


# ---- candidates that misbehave over time -----------------------------------------------------------


def test_a_candidate_whose_output_changes_from_call_to_call_fails_saying_so_and_keeps_the_table(capsys, tiny):
    args = ("--impl", "tests.candidates:off_on_the_second_call", "--dtype", "float32")
    code, out, err = _verify(capsys, *args)
    assert code == 1, out + err
    assert "internal error" not in err and "Traceback" not in err
    rows = [line.split() for line in out.splitlines()[2:9]]
    assert [row[0] for row in rows] == list(impls_layer_rows()) and rows[0][1] == "FAIL"
    assert all(row[1] in ("pass", "FAIL") for row in rows[1:])  # every property ran, each row kept, none an ERROR
    assert "The candidate is not deterministic: on one input 'layer equivalence with the spec' failed at" in out
    assert "and held when called again on the same input" in out


def impls_layer_rows() -> list[str]:
    from bertcheck.properties.registry import for_candidates

    return list(for_candidates("layer"))


def test_verify_counts_the_examples_drawn_not_those_shrinking_ran(capsys, tiny):
    args = ("--impl", "tests.candidates:functional_layer_pre_ln", "--property", "layer-equivalence")
    code, out, _ = _verify(capsys, *args)
    row = next(line for line in out.splitlines() if line.startswith("layer-equivalence "))
    assert code == 1 and row.split()[1] == "FAIL" and 1 <= int(row.split()[2]) <= 5, out


def test_a_property_named_twice_runs_once(capsys, tiny):
    args = ("--impl", "tests.candidates:torch_encoder_layer", "--property", "padding", "--property", "padding")
    code, out, _ = _verify(capsys, *args)
    assert code == 0 and "1 of 1 properties hold" in out
    assert [line.split()[0] for line in out.splitlines()].count("padding") == 1


def test_verify_says_how_far_each_property_got_as_plain_lines_off_a_terminal(capsys, tiny):
    code, _, err = _verify(capsys, "--impl", "tests.candidates:torch_encoder_layer", "--property", "padding")
    assert code == 0
    lines = err.splitlines()
    # --examples 5 (_verify's): 1 at random, then the 5 rows of the covering design (bertcheck.inputs.coverage).
    assert lines[-1].startswith("bertcheck verify: padding: 6 examples, worst ") and lines[-1].endswith(": pass")
    assert lines[0].startswith("bertcheck verify: padding: 1 examples, worst ")
    assert "\r" not in err


def test_the_progress_line_is_rewritten_in_place_on_a_terminal():
    import io

    from bertcheck.tools.verify import Result

    class Terminal(io.StringIO):
        def isatty(self):
            return True

    stream = Terminal()
    progress = cli.Progress(stream)
    result = Result("padding", examples=3, worst=0.25)
    progress(result)
    progress(result, finished=True)
    assert stream.getvalue() == (
        "\r\x1b[Kbertcheck verify: padding: 3 examples, worst 0.25"
        "\r\x1b[Kbertcheck verify: padding: 3 examples, worst 0.25: pass\n"
    )


def test_max_time_stops_drawing_examples_and_says_so(capsys, tiny):
    import time

    start = time.monotonic()
    args = ("--impl", "tests.candidates:slow_layer", "--examples", "25", "--max-time", "3")
    code, out, err = (
        cli.main(["verify", "--model", "random:tiny", *args, "--property", "padding"]),
        *capsys.readouterr(),
    )
    assert time.monotonic() - start < 20
    assert code == 0, out + err
    row = next(line for line in out.splitlines() if line.startswith("padding "))
    assert row.split()[1:3] == ["pass,", "stopped"] and "stopped at the time budget" in row
    assert 1 <= int(row.split()[3]) < 25
    assert "1 stopped at the time budget" in out.splitlines()[0]


def test_max_time_while_shrinking_reports_the_smallest_failure_found_so_far(capsys, tiny):
    args = (
        "--impl",
        "tests.candidates:slow_layer_off_past_8_tokens",
        "--max-time",
        "1.5",
        "--property",
        "layer-equivalence",
    )
    code, out, err = cli.main(["verify", "--model", "random:tiny", *args]), *capsys.readouterr()
    assert code == 1, out + err
    assert "shrinking stopped at the time budget: the smallest input found so far" in out
    assert "Property 'layer equivalence with the spec' failed at layer" in out


def test_ctrl_c_prints_the_table_of_what_finished_marked_interrupted_and_exits_130(capsys, tiny):
    code, out, err = _verify(capsys, "--impl", "tests.candidates:interrupted_on_the_tenth_call")
    assert code == 130, out + err
    assert "INTERRUPTED after 1 of 7 properties" in out.splitlines()[0]
    assert out.splitlines()[2].startswith("layer-equivalence  pass")
