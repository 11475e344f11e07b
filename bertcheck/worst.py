"""The worst error each property reached in this process, as a share of its tolerance (1.0 is the limit).

Every run of a property records here; the pytest plugin gathers it from each xdist worker and prints
one table at the end, so a run says how close it came, not only that it passed.
"""

from __future__ import annotations

import math

WORST: dict[tuple[str, str], float] = {}  # (property, model) -> worst share of the tolerance


def record(check: str, model: str, value: float) -> float:
    key = (check, model)
    WORST[key] = max(WORST.get(key, 0.0), value)
    return value


def merge(into: dict, other: dict) -> None:
    for key, value in other.items():
        into[key] = max(into.get(key, 0.0), value)


def table(worst: dict[tuple[str, str], float]) -> list[str]:
    """Rows of property by model; exact properties show 0."""
    models = sorted({m for _, m in worst})
    checks = sorted({c for c, _ in worst})
    width = max(len(c) for c in checks)
    lines = ["  " + "property".ljust(width) + "".join(f"  {m:>24}" for m in models)]
    for check in checks:
        cells = []
        for model in models:
            value = worst.get((check, model))
            cells.append("-" if value is None else ("inf" if math.isinf(value) else f"{value:.3g}"))
        lines.append("  " + check.ljust(width) + "".join(f"  {c:>24}" for c in cells))
    return lines
