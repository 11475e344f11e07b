"""How xdist hands bertcheck's test items to workers under `pytest -n N` (when no `--dist` is given).

xdist's `load` scheduling, except for one thing: the read-only properties (residual identity,
LayerNorm statistics, intermediate width, hidden states) of one model and shard draw the same inputs
and share one forward per input (`bertcheck.one_forward.observed`), but only inside one worker. Their
items, whose shard id ends in ``-one-forward``, go to a worker together, as one unit; every other
item is a unit of its own. Units are handed out largest first, then as workers free up.

(xdist's own `loadgroup` would do this from `xdist_group` marks, but it renames node ids through an
attribute pytest 9 no longer reads, so the groups never form there.)
"""

from __future__ import annotations

from xdist.scheduler import LoadScopeScheduling

from bertcheck.shards import ONE_FORWARD


def unit_of(nodeid: str) -> str:
    """The unit of `nodeid`: the model and shard of a read-only property's item, else the item itself.
    (Also what `bertcheck.split` keeps on one machine.)"""
    params = nodeid[nodeid.rfind("[") :] if nodeid.endswith("]") else ""
    return f"one forward {params}" if params.endswith(f"{ONE_FORWARD}]") else nodeid


class OneForwardScheduling(LoadScopeScheduling):
    def _split_scope(self, nodeid: str) -> str:
        return unit_of(nodeid)
