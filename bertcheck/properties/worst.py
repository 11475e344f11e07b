"""The worst error each property reached in this process, as a share of its tolerance (1.0 is the limit),
or FAIL where an example failed.

Every run of a property records here; the pytest plugin gathers it from each xdist worker and prints
one table at the end, so a run says how close it came, not only that it passed.
"""

from __future__ import annotations

import json
import math

from bertcheck.subjects.memory import relieve

WORST: dict[tuple[str, str], float] = {}  # (property, model) -> worst share of the tolerance
# What an example that failed records: above every share a passing example can have. Shown as FAIL, and
# written as "FAIL" in JSON.
FAILED = math.inf
EXAMPLES: dict[tuple[str, str], int] = {}  # (property, model) -> examples that ran (for the benchmark)
FAILED_ROWS: set[tuple[str, str]] = set()  # rows an example failed in since `FAILED_ROWS.clear()` (one test item)


def record(row: str, model: str, value: float) -> float:
    """Every example comes through here, `FAILED` for one that failed: also where its freed memory is
    handed back if the process is near its budget or the example was large (`bertcheck.subjects.memory.relieve`)."""
    key = (row, model)
    WORST[key] = max(WORST.get(key, 0.0), value)
    if value == FAILED:
        FAILED_ROWS.add(key)
    EXAMPLES[key] = EXAMPLES.get(key, 0) + 1
    relieve()
    return value


def merge(into: dict, other: dict) -> None:
    for key, value in other.items():
        into[key] = max(into.get(key, 0.0), value)


def table(worst: dict[tuple[str, str], float], models: list[str], rows: list[str]) -> list[str]:
    """Rows of property by model, for `models` only (a run's own tests check other models too), in the
    order of `rows` (`registry.rows()`); a row it does not name comes after them, by name."""
    worst = {(c, m): v for (c, m), v in worst.items() if m in models}
    models = [m for m in models if any(key[1] == m for key in worst)]
    if not models:
        return []
    order = {row: i for i, row in enumerate(rows)}
    rows_seen = sorted({c for c, _ in worst}, key=lambda c: (order.get(c, len(order)), c))
    width = max(len("property"), *(len(c) for c in rows_seen))
    columns = [max(len(m), 6) for m in models]
    lines = ["  " + "property".ljust(width) + "".join(f"  {m:>{w}}" for m, w in zip(models, columns))]
    for row in rows_seen:
        cells = []
        for model, w in zip(models, columns):
            value = worst.get((row, model))
            text = "-" if value is None else ("FAIL" if value == FAILED else f"{value:.3g}")
            cells.append(f"  {text:>{w}}")
        lines.append("  " + row.ljust(width) + "".join(cells))
    return lines


class WorstFileError(ValueError):
    """A file `load` cannot read as a worst-error table: one line."""


def save(path, worst: dict[tuple[str, str], float], models: list[str], run: dict) -> None:
    """The table as JSON (`--bert-worst-json`), with what `run` says of the run (its part of a split)."""
    import transformers

    data = {
        "run": {**run, "transformers": transformers.__version__},
        "models": models,
        "worst": [[c, m, "FAIL" if v == FAILED else v] for (c, m), v in sorted(worst.items())],
    }
    with open(path, "w", encoding="utf-8") as f:
        json.dump(data, f, indent=1)


def load(path) -> tuple[dict, list[str], dict]:
    """(worst, models, run) from a file `save` wrote."""
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
        worst = {(str(c), str(m)): FAILED if v == "FAIL" else float(v) for c, m, v in data["worst"]}
        return worst, [str(m) for m in data["models"]], dict(data.get("run", {}))
    except FileNotFoundError:
        raise WorstFileError(f"{path}: no such file") from None
    except (ValueError, KeyError, TypeError) as err:
        raise WorstFileError(f"{path}: not a worst-error file written by --bert-worst-json ({err})") from None


def combined(paths) -> tuple[dict, list[str], list[dict]]:
    """(worst, models, runs) of several runs' files (the parts of a split): each cell the worst of them all."""
    worst: dict[tuple[str, str], float] = {}
    models: list[str] = []
    runs = []
    for path in paths:
        w, m, run = load(path)
        merge(worst, w)
        models += [x for x in m if x not in models]
        runs.append(run)
    return worst, models, runs
