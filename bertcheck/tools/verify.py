"""Run the candidate properties on a reimplementation and report: the Python API and `bertcheck verify`.

    import bertcheck
    bertcheck.check_layer(my_layer_factory)                 # raises CandidateFailed with the report
    bertcheck.check_model(my_model_factory, model="minilm")

Each property runs under Hypothesis (derandomized: the same examples every run) until it fails, and
is then shrunk to its smallest failing example.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import torch
from hypothesis import HealthCheck, Phase, Verbosity, given, settings
from hypothesis.errors import Flaky

from bertcheck.subjects.candidate import CandidateError, FactoryError, LayerCandidate, ModelCandidate
from bertcheck.inputs.cases import Case, LayerCase
from bertcheck.inputs.devices import guard
from bertcheck.properties.failures import PropertyFailure, Unavailable
from bertcheck.inputs import coverage
from bertcheck.properties.registry import Property, for_candidates
from bertcheck.inputs.strategies import DEFAULT_DTYPES, LAYER_MAX_BATCH, MODEL_MAX_BATCH, layer_strategy, model_strategy
from bertcheck.subjects.subject import Bert


class CandidateFailed(AssertionError):
    """A candidate broke at least one property; `str()` is the report, `.report` the `Report`."""

    def __init__(self, report: "Report"):
        self.report = report
        super().__init__(report.text())


@dataclass
class Result:
    """One property on one candidate: how many examples ran, the worst error, and the shrunk failure."""

    property: str
    examples: int = 0
    worst: float = 0.0
    failure: PropertyFailure | None = None

    error: CandidateError | None = None  # the candidate broke the protocol on the shrunk input
    not_applicable: str | None = None  # why the property does not apply to this model (never a pass)
    stopped: str | None = None  # why the search ended before its examples ran (the time budget)
    note: str | None = None  # what the report says before the failure (a candidate that is not deterministic)
    # The latest failing example, while the search runs: what shrinking has reached so far.
    last_failure: PropertyFailure | None = field(default=None, repr=False)
    last_case: object = field(default=None, repr=False)

    @property
    def passed(self) -> bool:
        return self.failure is None and self.error is None and self.not_applicable is None

    @property
    def worst_said(self) -> str:
        """The worst error as a share of the tolerance, as the report writes it: ``> 1`` once it failed."""
        return "> 1" if math.isinf(self.worst) else f"{self.worst:.3g}"

    @property
    def status(self) -> str:
        if self.not_applicable is not None:
            return "n/a"
        if self.error is not None:
            return "ERROR"
        if self.failure is not None:
            return "FAIL"
        return "pass" if self.stopped is None else "pass, stopped"


@dataclass
class Report:
    candidate: str
    kind: str
    model_name: str  # the model's
    results: list[Result] = field(default_factory=list)
    interrupted: bool = False  # Ctrl-C: the results are those that finished
    planned: int = 0  # how many properties were to run
    left_out: list[str] = field(default_factory=list)  # inputs not drawn: outside what the candidate runs
    outputs: tuple[list[str], list[str]] | None = None  # a model candidate's outputs: compared, not given

    @property
    def passed(self) -> bool:
        return all(r.passed or r.not_applicable for r in self.results)

    @property
    def exit_code(self) -> int:
        """0 every property that applies holds, 1 one fails, 2 the candidate broke the protocol (cannot be
        checked), 130 interrupted (Ctrl-C)."""
        if self.interrupted:
            return 130
        return 2 if any(r.error for r in self.results) else (0 if self.passed else 1)

    def table(self) -> list[str]:
        rows = [("property", "result", "examples", "worst error", "counterexample (shrunk)")]
        for r in self.results:
            worst = r.worst_said
            if r.not_applicable is not None:
                rows.append((r.property, r.status, str(r.examples), "-", r.not_applicable))
            elif r.error is not None:
                rows.append((r.property, r.status, str(r.examples), "-", str(r.error).splitlines()[0][:160]))
            elif r.failure is not None:
                where = f"{r.failure.where}, {r.failure.activation}"
                inner = getattr(r.failure.case, "inner", r.failure.case)
                case = inner.describe(self.model_name)[-1] if inner is not None else ""
                rows.append((r.property, r.status, str(r.examples), worst, f"{where}: {case}" + _stopped(r)))
            else:
                rows.append((r.property, r.status, str(r.examples), worst, r.stopped or ""))
        widths = [max(len(row[i]) for row in rows) for i in range(4)]
        return ["  ".join(cell.ljust(w) for cell, w in zip(row[:4], widths)) + "  " + row[4] for row in rows]

    def text(self) -> str:
        passed = sum(r.passed for r in self.results)
        skipped = sum(r.not_applicable is not None for r in self.results)
        stopped = sum(r.stopped is not None for r in self.results)
        lines = [
            f"bertcheck verify: {self.kind} candidate {self.candidate} against {self.model_name}: "
            f"{passed} of {len(self.results)} properties hold"
            + (f", {skipped} do not apply" if skipped else "")
            + (f", {stopped} stopped at the time budget" if stopped else "")
            + (f"; INTERRUPTED after {len(self.results)} of {self.planned} properties" if self.interrupted else "")
            + " (worst error as a share of the tolerance; 1 = the limit)",
            *self.table(),
        ]
        if self.outputs is not None:
            compared, missing = self.outputs
            lines.append(f"outputs compared: {', '.join(compared) or 'none'}")
            lines.append(f"not given, so not compared: {', '.join(missing)}" if missing else "every output was given")
        if self.left_out:
            lines.append(f"not drawn, outside what the candidate declares it runs: {'; '.join(self.left_out)}")
        for r in self.results:
            if r.failure is not None or r.error is not None:
                lines += ["", f"--- {r.property} ---"]
                lines += [r.note] if r.note else []
                lines += [f"({r.stopped})"] if r.stopped else []
                lines += [r.failure.report() if r.failure else str(r.error)]
        return "\n".join(lines)


def _stopped(r: Result) -> str:
    return f" ({r.stopped})" if r.stopped else ""


def _settings(examples: int) -> settings:
    return settings(
        max_examples=examples,
        derandomize=True,  # the same examples every run: a report is reproducible
        database=None,
        deadline=None,  # an example is one or more forwards: time says nothing about correctness
        verbosity=Verbosity.quiet,  # the report names the shrunk input itself
        suppress_health_check=list(HealthCheck),
        print_blob=False,
        # One failure per property, shrunk: the smallest input that breaks it, not one per traceback line.
        report_multiple_bugs=False,
        phases=(Phase.explicit, Phase.reuse, Phase.generate, Phase.target, Phase.shrink),  # no "explain" notes
    )


class _Stop(BaseException):
    """Ends a property's search at once. Hypothesis shrinks and replays every `Exception`; this passes
    through it: a candidate that cannot be run at all, or the time budget."""

    def __init__(self, error: FactoryError | None = None):
        super().__init__()
        self.error = error


def _run_one(
    prop: Property,
    cand,
    bert: Bert,
    strategy,
    examples: int,
    name: str,
    example=None,
    *,
    deadline: float | None = None,
    progress: Callable[..., None] | None = None,
) -> Result:
    """One property on `cand`, up to `examples` examples, and up to time.monotonic() `deadline`: past
    it no further example is drawn (one always runs), and a failure found is reported as shrunk so far."""
    result = Result(name)

    def body(case):
        if deadline is not None and result.examples and time.monotonic() > deadline:
            raise _Stop()
        if result.last_failure is None and result.error is None:  # the examples drawn, not shrinking's
            result.examples += 1
        failure = None
        try:
            result.worst = max(result.worst, prop(bert, case, cand))
        except FactoryError as err:
            raise _Stop(err) from None  # nothing of it can run: stop the whole run
        except PropertyFailure as raised:
            failure = raised.again()  # no frames, no tensors (`PropertyFailure.again`): raised below
        except CandidateError as err:  # name the input, as a property failure does
            wrapped = cand.wrap(case)
            lines = [
                str(err),
                "Input:",
                *(f"  {line}" for line in wrapped.describe(bert.model_name)),
                "Reproduce:",
                f"  {wrapped.reproduce(bert.model_name, name)}",
            ]
            result.error = CandidateError("\n".join(lines))
            result.last_case = case
            raise result.error from err
        finally:
            if progress is not None:
                progress(result)
        if failure is not None:
            result.last_failure, result.last_case = failure, case
            raise failure

    def search(n: int) -> None:
        def one(case):  # a fresh function each run: @settings applies once per function
            body(case)

        given(strategy)(_settings(n)(one))()

    try:
        if example is not None:
            body(example)
        else:
            # The examples at random, then one per row of the covering design (`bertcheck.inputs.coverage`):
            # every input class the strategy can draw, by construction. The rows count among the examples.
            rows = coverage.rows_for_shard(search)
            search(max(1, examples - rows))
            coverage.run_rows(search, rows)
    except _Stop as stop:
        if stop.error is not None:
            raise stop.error from None
        result.stopped = "stopped at the time budget"
        if result.last_failure is not None:  # found, and shrinking cut short: the smallest so far
            result.failure, result.worst = _reported(prop, cand, bert, result), math.inf
            result.stopped = "shrinking stopped at the time budget: the smallest input found so far"
    except PropertyFailure as failure:
        result.failure, result.worst = failure, math.inf
    except Unavailable as why:
        result.not_applicable = str(why)
    except FactoryError:
        raise
    except CandidateError as err:
        result.error = err
    except Flaky:  # a failure that did not happen again on the same input: the candidate's doing
        _not_reproducible(result, cand, bert)
    return result


def _reported(prop: Property, cand, bert: Bert, result: Result) -> PropertyFailure:
    """The failure on the smallest input found, run once more outside Hypothesis for its full report (an
    engine's diagnosis runs on the failure reported only: `model_properties.end_to_end`)."""
    try:
        prop(bert, result.last_case, cand)
    except PropertyFailure as failure:
        return failure.again()
    except Exception:  # noqa: BLE001 - it failed differently this time: keep what was found
        pass
    return result.last_failure


def _not_reproducible(result: Result, cand, bert: Bert) -> None:
    """A failure Hypothesis could not reproduce on the same input: the candidate gives different outputs
    from call to call. The determinism property, run on that input, shows the two calls that differ."""
    result.worst = math.inf
    if result.last_failure is None:  # an error that went away when called again
        first = str(result.error).splitlines()[0] if result.error else "an error"
        result.error = CandidateError(
            f"not deterministic: {first}, and then no error when called again on the same input"
            + ("\n" + "\n".join(str(result.error).splitlines()[1:]) if result.error else "")
        )
        return
    said = f"'{result.last_failure.title}' failed at {result.last_failure.where}, {result.last_failure.activation}"
    result.note = (
        f"The candidate is not deterministic: on one input {said}, and held when called again on the same "
        "input. Two calls on that input:"
    )
    try:
        for_candidates(cand.kind)["determinism"](bert, result.last_case, cand)
    except PropertyFailure as differ:
        result.failure = differ
        return
    result.note = (
        f"The candidate is not deterministic: on one input {said}, and held when called again on the same "
        "input (two more calls on it agreed with each other; it changes across calls or over time). The failure:"
    )
    result.failure = result.last_failure


def run(
    candidate: LayerCandidate | ModelCandidate,
    model: str | Bert = "random:bert-base-uncased",
    *,
    properties: Iterable[str] | None = None,
    examples: int = 25,
    dtypes: Iterable[torch.dtype] = DEFAULT_DTYPES,
    device: str = "cpu",
    example: LayerCase | Case | None = None,
    max_time: float | None = None,
    progress: Callable[..., None] | None = None,
) -> Report:
    """Every (or each named) property on `candidate`; never raises for a failed property, only
    `FactoryError` for a candidate that cannot be run at all.

    - max_time: seconds for the whole run, shared evenly by the properties not yet run (what one leaves
      goes to the next); a property past its share draws no further example and says so.
    - progress: called as progress(result) after each example of a property, and as
      progress(result, finished=True) when it ends.
    - Ctrl-C ends the run with the properties that finished, the report marked interrupted.
    """
    bert = model if isinstance(model, Bert) else Bert.once(model)
    table = for_candidates(candidate.kind, properties)  # a property named twice runs once
    names = list(table)
    asked, runs = list(dtypes), candidate.runs
    dtypes = list(runs.dtypes_of(asked))
    if not dtypes or not runs.runs_device(device):
        raise FactoryError(
            f"{candidate.name} declares it runs dtypes {runs.says('dtypes')} on devices {runs.says('devices')} "
            f"(@bertcheck.runs); this run asks {', '.join(str(d).removeprefix('torch.') for d in asked)} on "
            f"{device}: nothing is left to draw (--dtype and --device choose)"
        )
    strategy = (
        layer_strategy(bert, dtypes, device, runs)
        if candidate.kind == "layer"
        else model_strategy(bert, dtypes, device, runs)
    )
    if max_time is not None and not max_time > 0:
        raise ValueError(f"max_time {max_time}: give a positive number of seconds")
    max_batch = LAYER_MAX_BATCH if candidate.kind == "layer" else MODEL_MAX_BATCH
    report = Report(candidate.name, candidate.kind, bert.model_name, planned=len(names))
    report.left_out = runs.left_out(asked, device, bert.max_length, max_batch)
    end = None if max_time is None else time.monotonic() + max_time
    with guard():  # bertcheck's own code names the device of every tensor it makes (bertcheck.inputs.devices)
        for i, name in enumerate(names):
            share = None if end is None else time.monotonic() + (end - time.monotonic()) / (len(names) - i)
            try:
                result = _run_one(
                    table[name],
                    candidate,
                    bert,
                    strategy,
                    examples,
                    name,
                    example,
                    deadline=share,
                    progress=progress,
                )
            except KeyboardInterrupt:
                report.interrupted = True
                break
            report.results.append(result)
            if progress is not None:
                progress(result, finished=True)
    if candidate.kind == "model":
        report.outputs = candidate.outputs_seen(bert.config)
    return report


def check_layer(factory: Callable, model: str | Bert = "random:bert-base-uncased", **options) -> Report:
    """Check a layer factory ``factory(hf_layer, config) -> fn(hidden_states, attention_mask)``.

    Returns the `Report` when every property holds; raises `CandidateFailed` (an AssertionError whose
    message is the report) when one does not or the candidate broke the protocol on some input, and
    `CandidateError` when it cannot be built at all.
    Options as for `run`: properties, examples (25), dtypes (float32, float64), device.
    """
    __tracebackhide__ = True
    report = run(factory if isinstance(factory, LayerCandidate) else LayerCandidate(factory), model, **options)
    if not report.passed:
        raise CandidateFailed(report)
    return report


def check_model(factory: Callable, model: str | Bert = "random:bert-base-uncased", **options) -> Report:
    """Check a model factory ``factory(hf_model) -> fn(input_ids, attention_mask, token_type_ids)``, as
    `check_layer` checks a layer factory."""
    __tracebackhide__ = True
    report = run(factory if isinstance(factory, ModelCandidate) else ModelCandidate(factory), model, **options)
    if not report.passed:
        raise CandidateFailed(report)
    return report


__all__ = ["CandidateError", "CandidateFailed", "Report", "Result", "check_layer", "check_model", "run"]
