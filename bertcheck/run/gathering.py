"""What a run's processes gather for its end-of-run tables: the worst error per property and model
(`bertcheck.properties.worst`) and the input classes each property drew (`bertcheck.inputs.coverage`).

Under xdist each worker hands its own at its end (`handed`) and the controller adds them up (`take`);
the process that reports (the controller, or the only process without xdist) adds its own and marks
the rows a failed item reported, even where a worker stopped early and handed nothing (`add_own`).

Imports: `bertcheck.inputs` and `bertcheck.properties`.
"""

from __future__ import annotations

from bertcheck.inputs import coverage
from bertcheck.properties import worst as _worst  # its table read at each call: a test may give a run its own

_WORST, _DRAWN = "bertcheck_worst", "bertcheck_coverage"  # the keys of a worker's ``workeroutput``


def handed() -> dict:
    """This worker's worst errors and input classes drawn, as xdist hands them over (JSON-able)."""
    return {_WORST: [[c, m, v] for (c, m), v in _worst.WORST.items()], _DRAWN: coverage.state()}


def take(worst: dict, drawn: dict, output: dict) -> None:
    """Add what one worker handed over (`handed`; nothing for a worker that died) to the run's totals."""
    _worst.merge(worst, {(c, m): v for c, m, v in output.get(_WORST, [])})
    coverage.absorb(drawn, output.get(_DRAWN, {}))


def add_own(worst: dict, drawn: dict, failed: set[tuple[str, str]]) -> None:
    """Add this process's own numbers to the run's totals, and FAIL in every row a failed item reported."""
    _worst.merge(worst, _worst.WORST)
    coverage.absorb(drawn, coverage.state())
    _worst.merge(worst, dict.fromkeys(failed, _worst.FAILED))
