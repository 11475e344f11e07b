"""Each property's examples split into test items ("shards"), so no item alone sets the wall time.

A test item is what xdist hands a worker. One item per property and model ran all its examples in
one go (gradients on bert-base: 67 s), so adding workers past the number of slow items bought nothing.
The plugin runs every Hypothesis property as `count` items instead, ``[model-shard1of4]`` and so on:

- each shard runs ``ceil(max_examples / count)`` examples, so a property still runs at least the
  profile's `max_examples` per model, summed over its shards;
- each shard has its own seed under the derandomized profiles (`bertcheck.run.seeds.Run.seed`, from
  the node id, which names the model and the shard), so shards explore different inputs and a run is
  still the same run every time;
- where a property draws from several dtypes, each shard draws one: shard k takes
  ``allowed[k % len(allowed)]``. A worker then needs one dtype's copy of the model per item, not
  every copy at once (a float64 bert-base is 0.9 GB);
- explicit ``@example`` inputs run once, in shard 0.

`-k PROPERTY` still selects a property (the test name is unchanged) and failures, the worst-error
table and the example counts still name the property and the model, never the shard.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

# Examples per item under any profile: 25 (ci) is 4 shards of 7, 250 (thorough) 36 of 7. Each shard
# also replays Hypothesis's simplest example first, so shards much smaller than this waste a share of
# their budget on it.
EXAMPLES_PER_SHARD = 7


# Groups of properties that share work per input, each marked ``@pytest.mark.shares_forward(GROUP)``.
# A group's items of one model and shard draw the same inputs (one seed), `bertcheck.run.scheduling` keeps
# them on one worker, and the shard id names the group: ``[minilm-shard2of4-one-forward]``, and for a
# property parametrized further, ``[minilm-shard2of4-plain-call-mask-bool]``.
ONE_FORWARD = "one-forward"  # the read-only properties: one hooked forward per input (bertcheck.properties.one_forward)
PLAIN_CALL = "plain-call"  # the input forms: one plain call per input and attention implementation
GROUPS = (ONE_FORWARD, PLAIN_CALL)


@dataclass(frozen=True)
class Shard:
    index: int
    count: int

    @property
    def id(self) -> str:
        return f"shard{self.index + 1}of{self.count}"

    def pick(self, allowed: tuple):
        """The one value of `allowed` this shard draws (its dtype), so shards of a property alternate."""
        return allowed[self.index % len(allowed)]

    def examples(self, max_examples: int) -> int:
        return math.ceil(max_examples / self.count)


def shards_for(max_examples: int) -> list[Shard]:
    count = max(1, math.ceil(max_examples / EXAMPLES_PER_SHARD))
    return [Shard(i, count) for i in range(count)]


_CURRENT: list[Shard] = []  # the shard of the test item running in this process, while it runs


def current() -> Shard | None:
    """The shard of the running test item; None outside a sharded item (the CLI, the Python API)."""
    return _CURRENT[-1] if _CURRENT else None


class running:
    """``with running(shard):`` marks `shard` as the running item's, for the strategies that read it."""

    def __init__(self, shard: Shard):
        self.shard = shard

    def __enter__(self) -> Shard:
        _CURRENT.append(self.shard)
        return self.shard

    def __exit__(self, *exc) -> None:
        _CURRENT.pop()
