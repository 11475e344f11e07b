"""One run split over N machines: ``pytest -n auto properties --bert-split K/N`` runs part K.

Each machine collects the same items and keeps its part: a deterministic partition every machine and
every xdist worker computes alike, with no coordinator. Parts are balanced by measured durations
(`Durations`, the file ``--bert-store-durations`` writes; the one shipped in the package was measured
on a 2-core machine) with the longest-first greedy rule: units, largest first, each to the part with
the least time so far.

The units are those of `bertcheck.run.scheduling`: the read-only properties of one model and example
shard share one forward per input, so they stay on one machine together; every other item is a unit
of its own. Durations are kept per example of a property and model, not per test id: a profile's
example count decides how many items (``shardKofN``) a property has, so one measured run prices the
items of any profile.

Under the ``fleet`` profile every item's seed also depends on the part and on BERTCHECK_SEED
(`seed`): the machines of a split draw their own inputs, and tomorrow's run with another seed draws
others still, while a counterexample in the example database is replayed first whichever machine runs
that item.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import re
import statistics
import time
from dataclasses import dataclass, field
from pathlib import Path

from bertcheck.inputs.profiles import current_profile, examples_of
from bertcheck.inputs.shards import GROUPS
from bertcheck.run.scheduling import unit_of

SHIPPED = Path(__file__).with_name("durations.json")
# An example shard's id and its group's (`bertcheck.inputs.shards`), at the end of the parameters or before the
# property's own (`[minilm-shard2of4-plain-call-mask-bool]` -> `[minilm-mask-bool]`).
_SHARD = re.compile(r"-shard\d+of\d+(?:-(?:" + "|".join(GROUPS) + r"))?(?=[-\]])")


class SplitError(ValueError):
    """A --bert-split or durations file the run cannot use: one line."""


@dataclass(frozen=True)
class Part:
    """Part `index` (1-based) of `count`."""

    index: int
    count: int

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"

    @classmethod
    def parse(cls, text: str) -> Part:
        match = re.fullmatch(r"\s*(\d+)\s*/\s*(\d+)\s*", text or "")
        if not match:
            raise SplitError(f"--bert-split {text!r}: expected K/N, as in 2/4")
        index, count = int(match[1]), int(match[2])
        if not 1 <= index <= count:
            raise SplitError(f"--bert-split {text!r}: K must be between 1 and N")
        return cls(index, count)


def property_key(nodeid: str) -> str:
    """The property and model of a test id, without its example shard: what a per-example cost is kept by."""
    return _SHARD.sub("", nodeid)


@dataclass
class Durations:
    """Measured seconds of test items: per example of each property and model, and per item for the
    rest. `estimate` prices an item of any profile from them."""

    per_example_s: dict[str, float] = field(default_factory=dict)
    per_item_s: dict[str, float] = field(default_factory=dict)
    about: dict = field(default_factory=dict)  # where and how it was measured

    @classmethod
    def load(cls, path: Path | str | None) -> Durations:
        path = Path(path) if path else SHIPPED
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            return cls(dict(data["per_example_s"]), dict(data["per_item_s"]), dict(data.get("about", {})))
        except FileNotFoundError:
            raise SplitError(f"--bert-durations {str(path)!r}: no such file") from None
        except (ValueError, KeyError, TypeError) as err:
            raise SplitError(f"--bert-durations {str(path)!r}: not a durations file ({err})") from None

    @classmethod
    def measured(cls, items: dict[str, tuple[float, int | None]], about: dict) -> Durations:
        """From one run's items: nodeid -> (seconds, examples run, or None for a test that is not a property)."""
        seconds: dict[str, float] = {}
        examples: dict[str, int] = {}
        rest: dict[str, float] = {}
        for nodeid, (s, n) in items.items():
            if n:
                key = property_key(nodeid)
                seconds[key] = seconds.get(key, 0.0) + s
                examples[key] = examples.get(key, 0) + n
            else:
                rest[nodeid] = s
        per_example = {k: round(seconds[k] / examples[k], 4) for k in sorted(seconds)}
        return cls(per_example, {k: round(v, 3) for k, v in sorted(rest.items())}, about)

    def save(self, path: Path | str) -> None:
        data = {"about": self.about, "per_example_s": self.per_example_s, "per_item_s": self.per_item_s}
        Path(path).write_text(json.dumps(data, indent=1) + "\n", encoding="utf-8")

    def estimate(self, nodeid: str, examples: int | None) -> float:
        """Seconds item `nodeid` should take, running `examples` examples (None: not a property). An item
        never measured costs what the typical one did: a user's own model or test splits evenly by count."""
        if examples:
            per = self.per_example_s.get(property_key(nodeid))
            if per is None:
                per = statistics.median(self.per_example_s.values()) if self.per_example_s else 1.0
            return per * examples
        if nodeid in self.per_item_s:
            return self.per_item_s[nodeid]
        return statistics.median(self.per_item_s.values()) if self.per_item_s else 1.0


def partition(costs: dict[str, float], units: dict[str, str], count: int) -> list[list[str]]:
    """Item ids into `count` parts: each unit (`units`: item -> unit) whole, largest unit first, to the
    part with the least time so far (ties: the lower part). Deterministic: same items, same parts."""
    unit_cost: dict[str, float] = {}
    members: dict[str, list[str]] = {}
    for item, cost in costs.items():
        unit = units.get(item, item)
        unit_cost[unit] = unit_cost.get(unit, 0.0) + cost
        members.setdefault(unit, []).append(item)
    load = [0.0] * count
    parts: list[list[str]] = [[] for _ in range(count)]
    for unit in sorted(unit_cost, key=lambda u: (-unit_cost[u], u)):
        k = min(range(count), key=lambda i: (load[i], i))
        load[k] += unit_cost[unit]
        parts[k].extend(members[unit])
    return parts


def part_of(items: list, part: Part, durations: Path | str | None) -> set[str]:
    """The node ids of pytest `items` in `part`, balanced by the `durations` file (None: the shipped one):
    the same on every machine and in every xdist worker."""
    known = Durations.load(durations)
    costs = {item.nodeid: known.estimate(item.nodeid, examples_of(item)) for item in items}
    return set(partition(costs, {nodeid: unit_of(nodeid) for nodeid in costs}, part.count)[part.index - 1])


class Timings:
    """What ``--bert-store-durations`` writes: each item's time (setup + call + teardown) and examples, as
    this process saw them reported (the controller sees every worker's). An item that skipped is left
    out: what it cost says nothing of what it costs where it runs."""

    def __init__(self) -> None:
        self.items: dict[str, list] = {}  # nodeid -> [seconds, examples or None]
        self.skipped: set[str] = set()

    def clear(self) -> None:
        """Forget every item: a new run in this process (pytester runs several) starts afresh."""
        self.items.clear()
        self.skipped.clear()

    def add(self, nodeid: str, seconds: float, skipped: bool, examples: int | None) -> None:
        if skipped:
            self.skipped.add(nodeid)
        entry = self.items.setdefault(nodeid, [0.0, None])
        entry[0] += seconds
        if examples is not None:
            entry[1] = examples

    def save(self, path: Path | str, workers: int, models: list[str]) -> None:
        """Write them as a durations file (`Durations`), saying when, where and how they were measured."""
        about = {
            "measured": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
            "machine": f"{platform.machine()}, {os.cpu_count()} CPUs",
            "profile": current_profile(),
            "workers": workers,
            "models": models,
        }
        kept = {nodeid: (s, n) for nodeid, (s, n) in self.items.items() if nodeid not in self.skipped}
        Durations.measured(kept, about).save(path)


def seed(unit: str, salt: str) -> int:
    """A seed for `unit`'s items: a function of the unit and `salt` (the fleet profile's run seed and part)."""
    return int.from_bytes(hashlib.sha256(f"bertcheck {salt} {unit}".encode()).digest()[:8], "big")
