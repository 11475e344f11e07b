"""Input classes: what the strategies can draw, named; which of them a test item draws by construction;
and how many examples of each class every property ran.

A property's `ci` budget is 25-28 derandomized examples, the same every run. Drawn by chance, a rare
class (a layer input past 128 tokens was 6 % of layer cases, a batch of 4-8 one in three) could be
missing from a property's whole budget, for good: a candidate that masks every key past position 128
passed every default run. So each test item draws, besides its random examples, one example of each
*row* of a covering design over the classes its strategy can draw (`rows`):

- under `ci` and `dev` every class of every dimension appears in some row (strength 1);
- under `thorough` and `fleet` every pair of classes of two dimensions does (strength 2).

A property's rows are spread over its shards (shard k runs rows k, k + count, ...) and count among its
examples. The shard's random examples run first: a bug that shows in every class fails there and
shrinks over all of them, to the smallest input there is. Then each row is a Hypothesis run of one
example of its own (`forcing`): the strategy draws inside the row's classes, at random within them
(never the simplest input of the class, which Hypothesis tries first and which sits on the class's
edge), and a bug that lives in that class alone fails there and shrinks inside it. Every example
records its classes (`record`): the run's summary and the benchmark say, per property and model, which
classes were drawn and how often, and which never.
"""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass, field
from itertools import combinations

from hypothesis.errors import Unsatisfiable

# ---- the vocabulary ------------------------------------------------------------------------------

# Dimension -> its classes, in the order a covering design assigns them. Bounds, for layer inputs:
# short up to 16 tokens, medium 17-127, long 128 to one below the model's longest input, max the longest
# (512 for BERT); batch 1, 2-3 and 4-8 rows; padding none, some of rows 1+ padded, or rows 1+ fully
# padded (a batch of one has neither; generated layer inputs only: an encoded text always has real
# tokens, [CLS] and [SEP]); scale the std of the generated states (`bertcheck.inputs.cases.SCALES`). Texts: sentences,
# sentence pairs (token types 0 and 1), or one text past the 512-token limit, which is truncated.
LENGTHS = ("short", "medium", "long", "max")
BATCHES = ("1", "2-3", "4-8")
PADDINGS = ("none", "some", "full")
SCALES = ("unit", "low", "large")
TEXTS = ("sentences", "pairs", "past the limit")
BATCH_BOUNDS = {"1": (1, 1), "2-3": (2, 3), "4-8": (4, 8)}


def batch_class(batch: int) -> str:
    return "1" if batch == 1 else "2-3" if batch <= 3 else "4-8"


def batches(min_batch: int, max_batch: int) -> tuple[str, ...]:
    """The batch classes a strategy drawing `min_batch`..`max_batch` rows can draw."""
    return tuple(c for c, (lo, hi) in BATCH_BOUNDS.items() if lo <= max_batch and hi >= min_batch)


def batch_bounds(cls: str, min_batch: int, max_batch: int) -> tuple[int, int]:
    lo, hi = BATCH_BOUNDS[cls]
    return max(lo, min_batch), min(hi, max_batch)


# ---- covering designs ----------------------------------------------------------------------------

Row = dict  # dimension -> class


def rows(dims: dict[str, tuple[str, ...]], strength: int, allowed=lambda row: True) -> list[Row]:
    """A covering design over `dims`: rows (one class per dimension) such that every class (strength 1)
    or every pair of classes of two dimensions (strength 2) that `allowed` permits appears in a row.
    Greedy and deterministic: each row starts from a unit not yet covered and takes, for each other
    dimension, the class that keeps the most uncovered units coverable (ties: the first), so the same
    dimensions always give the same rows."""
    names = [d for d in dims if dims[d]]

    def units(row: Row) -> set:
        if strength == 1:
            return {((d, row[d]),) for d in names}
        return {((a, row[a]), (b, row[b])) for a, b in combinations(names, 2)}

    if strength == 1:
        wanted = {((d, c),) for d in names for c in dims[d]}
    else:
        wanted = {((a, x), (b, y)) for a, b in combinations(names, 2) for x in dims[a] for y in dims[b]}
    wanted = {u for u in wanted if _completable(dims, names, dict(u), allowed)}
    out: list[Row] = []
    while wanted:
        row: Row = dict(min(wanted))  # an uncovered unit first, so that every row covers something new
        for d in [d for d in names if d not in row]:
            best, gain = None, -1
            for c in dims[d]:
                trial = {**row, d: c}
                if not _completable(dims, names, trial, allowed):
                    continue
                # What this choice keeps coverable: units that agree with the row so far and touch it.
                g = sum(1 for u in wanted if any(k in trial for k, _ in u) and all(trial.get(k, v) == v for k, v in u))
                if g > gain:
                    best, gain = c, g
            row[d] = best
        wanted -= units(row)
        out.append({d: row[d] for d in names})
    return out


def _completable(dims, names, partial: Row, allowed) -> bool:
    return any(allowed({**partial, **rest}) for rest in _completions(dims, names, partial))


def _completions(dims, names, partial):
    """Every assignment of the dimensions `partial` leaves open (small: a few dimensions of 2-4 classes)."""
    rest = [d for d in names if d not in partial]
    if not rest:
        yield {}
        return
    first, others = rest[0], rest[1:]
    for c in dims[first]:
        for tail in _completions(dims, others, {}):
            yield {first: c, **tail}


def strength(profile: str) -> int:
    """Every class under the everyday profiles; every pair of classes where the search is long."""
    return 2 if profile in ("thorough", "fleet") else 1


# ---- forcing: the rows a test item draws after its random examples -----------------------------


@dataclass
class _Forcing:
    shard: int  # this item's shard index, of `count`
    count: int
    index: int  # which of the shard's rows this run draws
    strength: int


_FORCING: list[_Forcing] = []


@contextmanager
def forcing(shard: int, count: int, index: int, strength_: int):
    """Within the block, the strategies draw the `index`-th row of their design that falls to this shard."""
    state = _Forcing(shard, count, index, strength_)
    _FORCING.append(state)
    try:
        yield
    finally:
        _FORCING.pop()


PROBE = -1  # `forcing` index: ask the strategy how many rows fall to this shard (`rows_for_shard`)


class Probed(BaseException):
    """Raised by a strategy under a `PROBE` forcing: the number of rows of its design for this shard."""

    def __init__(self, rows: int):
        super().__init__(rows)
        self.rows = rows


def rows_for_shard(search, shard: int = 0, count: int = 1, strength_: int = 1) -> int:
    """How many rows of the covering design fall to this shard: `search(1)` run under a `PROBE` forcing,
    which the strategy answers at its first draw, before any example runs (0 where no strategy of
    bertcheck's is drawn from: that one example then ran as any other)."""
    with forcing(shard, count, PROBE, strength_):
        try:
            search(1)
        except Probed as probed:
            return probed.rows
    return 0


def run_item(test, args: dict, shard: int, count: int, profile: str) -> None:
    """Run one property's item (`test`, a Hypothesis test, called with `args`; shard `shard` of `count`):
    its shard's examples drawn at random, then one example per row of the covering design that falls to
    the shard, each a Hypothesis run of its own. The rows count among the shard's examples. A bug in
    every class fails among the random ones and shrinks over all classes; one that lives in one class is
    met by its row and shrinks inside it."""
    from hypothesis import HealthCheck, Phase, settings

    item_settings = test._hypothesis_internal_use_settings
    design = (shard, count, strength(profile))
    # A row the model cannot take (sentence pairs, for one token type) rejects every draw: Unsatisfiable,
    # which `run_rows` skips and the input-class table names, not a failed health check.
    lenient = (*item_settings.suppress_health_check, HealthCheck.filter_too_much)

    def one_example(n: int) -> None:
        test._hypothesis_internal_use_settings = settings(
            item_settings,
            max_examples=n,
            database=None,
            phases=(Phase.generate, Phase.shrink),
            suppress_health_check=lenient,
        )
        test(**args)

    try:
        rows = rows_for_shard(one_example, *design)
        test._hypothesis_internal_use_settings = settings(
            item_settings, max_examples=max(1, item_settings.max_examples - rows)
        )
        test(**args)
        run_rows(one_example, rows, *design)
    finally:
        test._hypothesis_internal_use_settings = item_settings


def run_rows(search, rows: int, shard: int = 0, count: int = 1, strength_: int = 1) -> None:
    """Run `search(1)` (one Hypothesis run of one example) under `forcing` for each of the `rows` rows of
    the covering design that fall to this shard. A failure propagates, shrunk inside its row's classes."""
    for index in range(rows):
        with forcing(shard, count, index, strength_):
            try:
                search(1)
            except Unsatisfiable:  # a row this model cannot take (sentence pairs, for one token type)
                continue


def forced_row(dims: dict[str, tuple[str, ...]], allowed=lambda row: True) -> Row | None:
    """The row a strategy must draw now (None outside a forced run); under a `PROBE`, raises `Probed`
    with the number of rows of the design of `dims` that fall to this shard."""
    if not _FORCING:
        return None
    state = _FORCING[-1]
    design = _design(tuple((d, tuple(c)) for d, c in dims.items()), state.strength, allowed)
    mine = design[state.shard :: state.count]
    if state.index == PROBE:
        raise Probed(len(mine))
    return mine[state.index]


_DESIGNS: dict = {}


def _design(dims: tuple, strength_: int, allowed) -> list[Row]:
    key = (dims, strength_, getattr(allowed, "__qualname__", None))
    if key not in _DESIGNS:
        _DESIGNS[key] = rows(dict(dims), strength_, allowed)
    return _DESIGNS[key]


# ---- what was drawn ------------------------------------------------------------------------------


@dataclass
class Drawn:
    """The classes of one drawn example, and every class its strategy could have drawn."""

    classes: dict[str, str]
    applicable: dict[str, tuple[str, ...]] = field(default_factory=dict)
    case: object = None  # the example itself: only a property run on this very object counts it


_LAST: list[Drawn] = []  # the latest example a strategy drew in this process, until a property records it
# (property row, model) -> "dimension=class" -> examples; and the classes that property's strategy could draw.
COUNTS: dict[tuple[str, str], dict[str, int]] = {}
APPLICABLE: dict[tuple[str, str], set[str]] = {}
NOT_APPLICABLE: dict[tuple[str, str], set[str]] = {}  # classes the model cannot take (`rejected`)


def drawn(case, classes: dict[str, str], applicable: dict[str, tuple[str, ...]]) -> None:
    """Called by a strategy for each example it draws."""
    _LAST[:] = [Drawn(classes, applicable, case)]


def _taken(case) -> Drawn | None:
    """The classes of `case` if it is the example a strategy drew last (else None: an explicit example,
    one a user's own strategy drew, or a test calling a property directly); forgotten either way."""
    last = _LAST.pop() if _LAST else None
    return last if last is not None and last.case is case else None


def record(row: str, model: str, case) -> None:
    """Called for each example a property runs: the classes of `case`, as its strategy drew them."""
    last = _taken(case)
    if last is None:
        return
    counts = COUNTS.setdefault((row, model), {})
    for d, c in last.classes.items():
        counts[f"{d}={c}"] = counts.get(f"{d}={c}", 0) + 1
    APPLICABLE.setdefault((row, model), set()).update(f"{d}={c}" for d, cs in last.applicable.items() for c in cs)


def rejected(row: str, model: str, case) -> None:
    """`case` is one this model cannot take (a sentence pair, where it has one token type): its classes
    are not this model's to draw."""
    last = _taken(case)
    if last is not None:
        key = (row, model)
        NOT_APPLICABLE.setdefault(key, set()).update(
            f"{d}={c}" for d, c in last.classes.items() if (d, c) == ("text", "pairs")
        )


def state() -> dict:
    """This process's counts, as JSON (an xdist worker hands them to the controller: `absorb`)."""
    return {
        "counts": [[r, m, c, n] for (r, m), cs in COUNTS.items() for c, n in cs.items()],
        "applicable": [[r, m, sorted(cs)] for (r, m), cs in APPLICABLE.items()],
        "not_applicable": [[r, m, sorted(cs)] for (r, m), cs in NOT_APPLICABLE.items()],
    }


def absorb(into: dict, other: dict) -> dict:
    """`other` (a `state()`) added to `into` (one, or {}); returns `into`."""
    counts = {(r, m, c): n for r, m, c, n in into.get("counts", [])}
    for r, m, c, n in other.get("counts", []):
        counts[r, m, c] = counts.get((r, m, c), 0) + n
    out = {"counts": [[r, m, c, n] for (r, m, c), n in sorted(counts.items())]}
    for name in ("applicable", "not_applicable"):
        sets: dict = {}
        for r, m, cs in [*into.get(name, []), *other.get(name, [])]:
            sets.setdefault((r, m), set()).update(cs)
        out[name] = [[r, m, sorted(cs)] for (r, m), cs in sorted(sets.items())]
    into.clear()
    into.update(out)
    return into


def summary(merged: dict, models: list[str]) -> tuple[list[str], dict[tuple[str, str], list[str]]]:
    """One line per property and model, each dimension's classes with their examples (as drawn by the
    property's strategy, shrinking's replays included); and, per property and model, the classes it
    could draw and never did."""
    counts: dict = {}
    for r, m, c, n in merged.get("counts", []):
        counts.setdefault((r, m), {})[c] = n
    skip = {(r, m): set(cs) for r, m, cs in merged.get("not_applicable", [])}
    lines, never = [], {}
    for r, m, cs in merged.get("applicable", []):
        if m not in models:
            continue
        dims: dict[str, list[str]] = {}
        for c in sorted(set(cs) - skip.get((r, m), set()), key=_order):
            d, name = c.split("=", 1)
            n = counts.get((r, m), {}).get(c, 0)
            dims.setdefault(d, []).append(f"{name} {n}" if n else f"{name} NEVER")
            if not n:
                never.setdefault((r, m), []).append(c)
        lines.append(f"  {r} [{m}]: " + "; ".join(f"{d}: " + ", ".join(v) for d, v in dims.items()))
    return lines, never


_ORDER = {
    f"{d}={c}": i
    for i, (d, c) in enumerate(
        [("length", c) for c in LENGTHS]
        + [("text", c) for c in TEXTS]
        + [("batch", c) for c in BATCHES]
        + [("padding", c) for c in PADDINGS]
        + [("scale", c) for c in SCALES]
    )
}


def _order(c: str):
    return (_ORDER.get(c, len(_ORDER)), c)
