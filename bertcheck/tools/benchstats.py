"""A pytest plugin for `bertcheck bench`, loaded with ``-p bertcheck.tools.benchstats``: what the benchmark reads
from the suite run it times, written as JSON to the file BERTCHECK_STATS names.

Examples run per (property, model) and the inputs drawn (`bertcheck.properties.worst`, `bertcheck.inputs.strategies`),
the peak memory and CPU time of each xdist worker, every item's time, the worst-error table the main plugin
gathered, and each failed item with the input its failure shrank to. Users' runs never load it.
"""

from __future__ import annotations

import json
import os

import pytest

_STATS = pytest.StashKey[dict]()  # examples per (property, model), peak RSS per worker, inputs drawn
_DURATIONS: dict[str, dict] = {}  # "items" -> nodeid -> seconds (setup + call + teardown), in the process that reports
_FAILURES: dict[str, dict | None] = {}  # failed item -> the input its failure shrank to (`bertcheck_shrunk`)


def _peak_rss_mib() -> float:
    from bertcheck.subjects.memory import peak_rss_gib

    return peak_rss_gib() * 1024


def _cpu_s() -> float:
    """This process's CPU time so far, user and system: a worker's work, whatever else the machine runs (its
    wall time grows with every neighbour, as under an outer ``pytest -n auto``)."""
    import resource

    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _stats(config) -> dict:
    return config.stash.setdefault(
        _STATS, {"examples": {}, "peak_rss_mib": [], "cpu_s": [], "drawn": {}, "distinct": set()}
    )


def _add(stats: dict, examples: dict, rss: float, drawn: dict, distinct, cpu: float) -> None:
    stats["distinct"].update(distinct)
    for key, n in examples.items():
        stats["examples"][key] = stats["examples"].get(key, 0) + n
    for key, n in drawn.items():
        stats["drawn"][key] = stats["drawn"].get(key, 0) + n
    stats["peak_rss_mib"].append(rss)
    stats["cpu_s"].append(cpu)


def pytest_runtest_logreport(report):
    """The controller sees every item's report, from every worker: keep each item's total time."""
    if report.when == "call" and report.failed:
        _FAILURES[report.nodeid] = dict(report.user_properties).get("bertcheck_shrunk")
    if report.when in ("setup", "call", "teardown") and not report.nodeid.startswith("tests/"):
        durations = _DURATIONS.setdefault("items", {})
        durations[report.nodeid] = durations.get(report.nodeid, 0.0) + report.duration
        test = report.nodeid.split("[")[0].split("::")[-1]
        model = report.nodeid.split("[")[1].split("-shard")[0].rstrip("]") if "[" in report.nodeid else ""
        by_test = _DURATIONS.setdefault("tests", {})
        by_test[f"{test} [{model}]"] = by_test.get(f"{test} [{model}]", 0.0) + report.duration


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node, error):
    output = getattr(node, "workeroutput", {})
    if "bertcheck_peak_rss_mib" in output:
        _add(
            _stats(node.config),
            {(c, m): n for c, m, n in output.get("bertcheck_examples", [])},
            output["bertcheck_peak_rss_mib"],
            {(k, b): n for k, b, n in output.get("bertcheck_drawn", [])},
            output.get("bertcheck_distinct", []),
            output.get("bertcheck_cpu_s", 0.0),
        )


@pytest.hookimpl(trylast=True)  # after the main plugin has gathered the worst errors
def pytest_sessionfinish(session):
    from bertcheck.inputs.strategies import DISTINCT, DRAWN
    from bertcheck.properties.worst import EXAMPLES

    config = session.config
    if hasattr(config, "workeroutput"):  # an xdist worker: hand its numbers to the controller
        config.workeroutput["bertcheck_examples"] = [[c, m, n] for (c, m), n in EXAMPLES.items()]
        config.workeroutput["bertcheck_peak_rss_mib"] = _peak_rss_mib()
        config.workeroutput["bertcheck_drawn"] = [[k, b, n] for (k, b), n in DRAWN.items()]
        config.workeroutput["bertcheck_distinct"] = sorted(DISTINCT)
        config.workeroutput["bertcheck_cpu_s"] = _cpu_s()
        return
    stats = _stats(config)
    if not stats["peak_rss_mib"]:  # no xdist workers reported: this process ran the tests itself
        _add(stats, EXAMPLES, _peak_rss_mib(), DRAWN, DISTINCT, _cpu_s())
    path = os.environ.get("BERTCHECK_STATS")
    if path:
        _write(config, stats, path)


def _write(config, stats: dict, path: str) -> None:
    from bertcheck.plugin import COVERAGE_KEY, WORST_KEY

    items = sorted(_DURATIONS.get("items", {}).items(), key=lambda kv: -kv[1])
    worst = sorted(config.stash.get(WORST_KEY, {}).items())
    with open(path, "w") as f:
        json.dump(
            {
                "examples": [[c, m, n] for (c, m), n in sorted(stats["examples"].items())],
                "peak_rss_mib": stats["peak_rss_mib"],
                "cpu_s": stats["cpu_s"],
                "worst": [[c, m, v] for (c, m), v in worst],
                "drawn": [[k, b, n] for (k, b), n in sorted(stats["drawn"].items())],
                "distinct": sorted(stats["distinct"]),
                "items": len(items),
                "slowest": items[:10],
                "coverage": config.stash.get(COVERAGE_KEY, {}),
                "failed": [
                    {"nodeid": nodeid, "seconds": dict(items).get(nodeid), "shrunk": shrunk}
                    for nodeid, shrunk in sorted(_FAILURES.items())
                ],
                "seconds_per_test": sorted(_DURATIONS.get("tests", {}).items(), key=lambda kv: -kv[1]),
            },
            f,
            indent=1,
        )
