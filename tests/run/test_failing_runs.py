"""A failing run must fit as a passing one does: a failure carries numbers and the input, never the
frames (tensors, gradients, autograd graphs) that made it, so Hypothesis can keep failing examples
while it shrinks; and a planted regression is reported, shrunk, within the time and memory a worker has."""

from __future__ import annotations

import gc
import os
import subprocess
import sys
import weakref
from pathlib import Path

import pytest
import torch

from bertcheck.properties import registry
from bertcheck.inputs.cases import Case
from bertcheck.properties.failures import PropertyFailure

ROOT = Path(__file__).resolve().parents[2]


def _raised(run) -> PropertyFailure:
    with pytest.raises(PropertyFailure) as caught:
        run()
    return caught.value


def test_a_failure_raised_by_a_property_holds_no_frame_and_so_no_tensor(fresh):
    import mutants

    bert = fresh("random:tiny")
    mutants.gelu_wrong_backward(bert.model())
    failure = _raised(lambda: registry.run_model_property(bert, Case(("a b c",)), "gradients"))
    assert failure.__context__ is None and failure.__cause__ is None
    frames = []
    tb = failure.__traceback__
    while tb is not None:
        frames.append(tb.tb_frame.f_code.co_name)
        tb = tb.tb_next
    # Raised from the registry's wrapper: nothing of the property's own frames, which held the gradients.
    assert frames[-1] == "_run" and "_gradients_apart" not in frames, frames


def test_a_failing_one_forward_property_keeps_no_activation_alive(fresh):
    """The shared forward's results are remembered per input (`one_forward.observed`): a failure kept
    there with its frames held the whole forward's activations, per failing input."""
    import mutants

    bert = fresh("random:tiny")
    bert.shares_observations = True
    mutants.tanh_gelu(bert.model(), 0)
    seen = []
    from bertcheck.properties import one_forward

    real = one_forward.capture

    def watching(*args, **kwargs):
        out = real(*args, **kwargs)
        store = kwargs["store"]
        seen.extend(weakref.ref(v) for v in store.values() if isinstance(v, torch.Tensor))
        return out

    one_forward.capture = watching
    try:
        _raised(lambda: registry.run_model_property(bert, Case(("a b c",)), "hidden-states"))
    finally:
        one_forward.capture = real
    gc.collect()
    assert seen and all(ref() is None for ref in seen), "an activation outlived its failing example"


# Long inputs only, every example 512 tokens after truncation, and layer 3 wrong past token 400: the
# failure is found on a 512-token input and shrinks among 512-token inputs.
LONG_HIDDEN_STATES = """
from hypothesis import given, strategies as st
from bertcheck.inputs.cases import Case
from bertcheck.properties.registry import run_model_property
from bertcheck.inputs.strategies import long_sentences

@given(case=st.builds(lambda text: Case((text,)), long_sentences()))
def test_hidden_states_at_512_tokens(bert, case):
    run_model_property(bert, case, "hidden-states")
"""
PLANT_PAST_400 = """
import pytest

@pytest.fixture(autouse=True)
def layer_3_wrong_past_token_400(request):
    if "bert" not in request.fixturenames:
        return
    out = request.getfixturevalue("bert").model().encoder.layer[3].output
    if type(out).__name__ == "WrongPast400":
        return
    forward = type(out).forward
    def broken(self, hidden_states, input_tensor):
        y = forward(self, hidden_states, input_tensor).clone()
        y[:, 400:] += 0.5
        return y
    out.__class__ = type("WrongPast400", (type(out),), {"forward": broken})
"""
BERT_BASE = ("--bert-model", "random:bert-base-uncased")
HEAVY_FAILURES = {
    "hidden states at 512 tokens": (PLANT_PAST_400, LONG_HIDDEN_STATES, ("-k", "512"), "failed at layer 3"),
    "a layer candidate": (
        None,
        None,
        ("properties", "-k", "equals_the_spec", "--bert-impl", "tests.candidates:functional_layer_pre_ln"),
        "candidate: tests.candidates:functional_layer_pre_ln (layer factory)",
    ),
    "a model candidate": (
        None,
        None,
        (
            "properties",
            "-k",
            "specs_embeddings",
            "--bert-model-impl",
            "tests.candidates:positions_shifted_model",
        ),
        "candidate: tests.candidates:positions_shifted_model (model factory)",
    ),
}


@pytest.mark.skipif(sys.platform != "linux", reason="ru_maxrss is in KiB on Linux")
@pytest.mark.parametrize("case", HEAVY_FAILURES)
def test_a_failure_on_a_heavy_path_of_bert_base_is_reported_within_the_worker_budget_and_time(tmp_path, case):
    plant, test_file, args, says = HEAVY_FAILURES[case]
    extra = []
    if plant:
        (tmp_path / "plant_heavy.py").write_text(plant)
        extra += ["-p", "plant_heavy"]
    if test_file:
        (tmp_path / "test_heavy.py").write_text(test_file)
        extra.append(str(tmp_path / "test_heavy.py"))
    # A shrinking budget of 10 s, not ci's 60: at 512 tokens it is reached, and the item stays shorter.
    code, out, peaks, busy = _measured(tmp_path, [*args, *extra, *BERT_BASE], BERTCHECK_SHRINK_SECONDS="10")
    print(f"{case}: peaks {peaks} GiB, busiest worker {busy:.1f} CPU s")
    assert code == 1, out[-3000:]
    assert says in out, out[-3000:]
    _within_the_worker_budget(out, peaks)
    # -n 2 here, wall alone: 41 s at 512 tokens (1.02 GiB), 19 s a layer candidate (1.59), 23 s a model candidate (1.66)
    assert busy <= 150, out[-1500:]


def _measured(tmp_path: Path, args: list[str], **variables) -> tuple[int, str, list[float], float]:
    """pytest in a subprocess from the checkout under ``-n 2``, as a user runs it: its exit code, output,
    each worker's peak resident memory (GiB) and the most CPU time one worker spent (s), both from the
    benchmark's statistics plugin.

    Time is judged in a worker's CPU seconds, not the run's wall: this test runs inside the suite's own
    ``pytest -n auto``, so on CI's 2 cores the subprocess's two workers share them with the outer workers
    and its wall time is whatever they happen to run beside it (50 s alone, 93 s once in CI). A worker's CPU
    time is its own work, and it bounds its wall time on an idle core. Shrinking's own budget is wall-clock
    (`bertcheck.run.seeds`), so a crowded machine only makes it stop sooner."""
    import json
    import time

    stats = tmp_path / "stats.json"
    env = {**os.environ, "PYTHONPATH": f"{tmp_path}{os.pathsep}{ROOT}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    env.update(variables, BERTCHECK_STATS=str(stats))
    env.pop("PYTEST_XDIST_WORKER", None)
    start = time.monotonic()
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-n",
            "2",
            "-p",
            "bertcheck.tools.benchstats",
            "-p",
            "no:cacheprovider",
            *args,
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    out = done.stdout + done.stderr
    assert stats.exists(), out[-3000:]
    numbers = json.loads(stats.read_text())
    peaks = [mib / 1024 for mib in numbers["peak_rss_mib"]]
    print(f"wall {time.monotonic() - start:.1f} s, CPU per worker {numbers['cpu_s']} s")
    return done.returncode, out, peaks, max(numbers["cpu_s"])


def _within_the_worker_budget(out: str, peaks: list[float]) -> None:
    """Each of the two workers at or under the per-worker budget (BERTCHECK_WORKER_MEMORY's default), and
    so no over-budget warning (which would name the item)."""
    assert len(peaks) == 2 and max(peaks) <= 2.0, (peaks, out[-1500:])
    assert "memory peaked at" not in out, out[-3000:]


@pytest.mark.skipif(sys.platform != "linux", reason="ru_maxrss is in KiB on Linux")
def test_a_planted_gradient_regression_on_bert_base_is_reported_shrunk_within_the_worker_budget(tmp_path):
    # The headline case: every GELU's backward wrong (the forward exact), where shrinking the
    # gradients failure took 370 s and 13.1 GB in one process. The benchmark's failing run plants it too.
    args = ["properties", "-p", "bertcheck.tools.planted", "-k", "reference_backward", *BERT_BASE]
    code, out, peaks, busy = _measured(tmp_path, args)
    print(f"gradients: peaks {peaks} GiB, busiest worker {busy:.1f} CPU s")
    assert code == 1, out[-3000:]
    assert "Property 'gradients' failed at" in out
    assert "sentences: ['']" in out  # shrunk to the smallest input
    _within_the_worker_budget(out, peaks)
    assert busy <= 90, out[-1500:]  # -n 2 here, wall alone: 50 s (both shards fail and shrink), 1.43 GiB a worker


# Layer 0 wrong only past 6 tokens, and every forward slowed down: shrinking takes many slow steps.
SLOW_AND_BROKEN = """
import time
import pytest

@pytest.fixture(autouse=True)
def long_inputs_break_layer_0_slowly(bert):
    out = bert.model().encoder.layer[0].output
    if type(out).__name__ == "SlowLongInputsBreak":
        return
    forward = type(out).forward
    def broken(self, hidden_states, input_tensor):
        time.sleep(0.2)
        y = forward(self, hidden_states, input_tensor)
        return y + 0.5 if y.shape[1] > 6 else y
    out.__class__ = type("SlowLongInputsBreak", (type(out),), {"forward": broken})
"""
HIDDEN_STATES = """
from hypothesis import given, settings
from bertcheck.properties.registry import run_model_property
from bertcheck.inputs.strategies import cases

@settings(max_examples=20, database=None)
@given(case=cases(long=False, max_batch=2))
def test_hidden_states(bert, case):
    run_model_property(bert, case, "hidden-states")
"""


def test_shrinking_past_its_time_budget_reports_the_smallest_failure_so_far_and_says_so(pytester, monkeypatch):
    monkeypatch.setenv("BERTCHECK_SHRINK_SECONDS", "1")
    pytester.makeconftest(SLOW_AND_BROKEN)
    pytester.makepyfile(test_p=HIDDEN_STATES)
    result = pytester.runpytest_subprocess("test_p.py", "--bert-model", "random:tiny", "-p", "no:cacheprovider")
    result.assert_outcomes(failed=3)  # 20 examples: 3 shards, each finds it
    out = result.stdout.str()
    assert "Property 'per-layer equivalence with hidden_states' failed at layer 0" in out
    assert "(shrinking stopped at its time budget of 1 s under the ci profile: this is the smallest input found" in out
    assert "Reproduce:" in out and "python -m bertcheck check hidden-states" in out
    result.stdout.fnmatch_lines(["*hidden-states*FAIL"])


# `bertcheck` in this process with every GELU the tanh approximation: a drifting model; peak memory and CPU
# time at exit (CPU, not wall, for the reason `_measured` gives).
DRIFTING_CLI = """
import atexit, resource, sys
import torch
from transformers.models.bert import modeling_bert
from bertcheck.tools import cli

def said():  # this program's own peak (memory.peak_rss_gib), in KiB; ru_maxrss would count its parent's
    from bertcheck.subjects.memory import peak_rss_gib

    usage = resource.getrusage(resource.RUSAGE_SELF)
    print("PEAK", int(peak_rss_gib() * 2**20), "CPU", usage.ru_utime + usage.ru_stime, file=sys.stderr)
atexit.register(said)
if sys.argv[1] == "drift":
    modeling_bert.BertIntermediate.forward = lambda self, h: torch.nn.functional.gelu(self.dense(h), approximate="tanh")
sys.exit(cli.main(sys.argv[2:]))
"""


@pytest.mark.skipif(sys.platform != "linux", reason="ru_maxrss is in KiB on Linux")
def test_baseline_compare_on_a_drifting_bert_base_reports_drift_within_the_worker_budget(tmp_path):
    baseline = str(tmp_path / "bert-base.safetensors")

    def cli(*args):
        done = subprocess.run(
            [sys.executable, "-c", DRIFTING_CLI, *args], capture_output=True, text=True, timeout=300, cwd=tmp_path
        )
        out = done.stdout + done.stderr
        said = out.split("PEAK ")[1].split()
        return done.returncode, out, int(said[0]) / 2**20, float(said[2])

    code, out, _, _ = cli("exact", "baseline", "record", "--model", "random:bert-base-uncased", "--out", baseline)
    assert code == 0, out[-2000:]
    code, out, peak_gib, busy = cli("drift", "baseline", "compare", baseline)
    print(f"baseline compare: peak {peak_gib:.2f} GiB, {busy:.1f} CPU s")
    assert code == 1, out[-2000:]
    assert "DRIFT: worst value error" in out
    assert peak_gib <= 2.0, out[-1500:]
    assert busy <= 90, out[-1500:]
