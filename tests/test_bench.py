"""`bertcheck bench` measures and reports; it asserts nothing about speed (timed tests are flaky by nature)."""

import json

from bertcheck import cli


def test_bench_writes_every_measurement_to_json_and_prints_the_goals(tmp_path, capsys, tiny):
    out = tmp_path / "bench.json"
    assert cli.main(["bench", "--quick", "--no-suite", "--no-split", "--model", "random:tiny", "--json", str(out)]) == 0
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
