"""`bertcheck bench` measures and reports; it asserts nothing about speed (timed tests are flaky by nature)."""

import json
from pathlib import Path

from bertcheck.tools import bench, cli

ROOT = Path(__file__).resolve().parents[2]


def test_bench_writes_every_measurement_to_json_and_prints_the_goals(tmp_path, capsys, tiny):
    out = tmp_path / "bench.json"
    assert (
        cli.main(
            [
                "bench",
                "--quick",
                "--no-suite",
                "--no-split",
                "--no-failing",
                "--model",
                "random:tiny",
                "--json",
                str(out),
            ]
        )
        == 0
    )
    result = json.loads(out.read_text())
    entry = result["models"]["random:tiny"]
    assert set(entry["bare_s"]) == {"B1 L8", "B1 L32"} and all(v > 0 for v in entry["bare_s"].values())
    ratios = entry["ratio"]["B1 L32"]
    assert {"residual-identity", "hidden-states", "gradients"} <= set(ratios)
    assert all(v is None or v > 0 for v in ratios.values())
    assert result["machine"]["threads"] == 1 and entry["load_s"] > 0
    printed = capsys.readouterr().out
    assert "float32 property <= 2.5x bare forward" in printed and "model load <= 1 s after the first" in printed


def test_bench_outside_a_checkout_says_to_pass_no_suite(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert cli.main(["bench", "--quick", "--model", "random:tiny"]) == 2
    assert "--no-suite" in capsys.readouterr().err


def test_the_failing_run_plants_its_regression_and_reports_each_failure_with_its_shrunk_input_and_memory():
    run = bench.failing_suite(ROOT, 1, ("properties", "-k", "reference_backward", "--bert-model", "random:tiny"))
    assert run["exit_code"] == 1, run["summary"]
    assert run["failed"] and all("reference_backward" in f["nodeid"] for f in run["failed"]), run["failed"]
    for failed in run["failed"]:
        assert failed["shrunk"]["property"] == "gradients" and failed["shrunk"]["model"] == "random:tiny"
        assert failed["seconds"] > 0
        # Shrunk to the smallest input there is: one empty sentence, [CLS] [SEP].
        assert failed["size"] == {"batch": 1, "tokens": 2, "characters": 0, "dtype": failed["size"]["dtype"]}
    assert len(run["peak_rss_mib_per_worker"]) == 1 and run["peak_rss_mib_per_worker"][0] > 0
    result = {"machine": {}, "models": {}, "failing": run}
    result["goals"] = bench.goals(result)
    assert result["goals"]["failing run: peak RSS per worker <= 2 GiB"]["met"]
    printed = "\n".join(bench.table({**result, "date": "now", "machine": MACHINE}))
    assert "failing: pytest -n 1" in printed and "shrunk to batch 1, tokens 2, characters 0" in printed


MACHINE = {"platform": "p", "cpus": 1, "torch": "t", "transformers": "x"}
