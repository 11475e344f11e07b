"""How xdist hands bertcheck's test items to workers under `pytest -n N` (when no `--dist` is given).

xdist's `load` scheduling, except for one thing: a group of properties that shares work per input
(`bertcheck.inputs.shards.GROUPS`) shares it only inside one worker. The read-only properties (residual
identity, LayerNorm statistics, intermediate width, hidden states) of one model and shard draw the same
inputs and share one hooked forward per input (`bertcheck.properties.one_forward.observed`); the input forms of one
model and shard share the plain call per input (`bertcheck.properties.input_forms`). A group's items of one model
and shard, whose shard id names the group (``-one-forward``, ``-plain-call``), go to a worker together,
as one unit; every other item is a unit of its own. Units are handed out largest first, then as workers
free up.

(xdist's own `loadgroup` would do this from `xdist_group` marks, but it renames node ids through an
attribute pytest 9 no longer reads, so the groups never form there.)
"""

from __future__ import annotations

import re

from xdist.scheduler import LoadScopeScheduling

from bertcheck.inputs.shards import GROUPS, ONE_FORWARD

# `[MODEL-shardKofN-GROUP]`, or `[MODEL-shardKofN-GROUP-MORE]` for a property parametrized further.
_GROUPED = re.compile(r"\[(.*-shard\d+of\d+-(" + "|".join(GROUPS) + r"))(?:-[^\[\]]*)?\]$")


def shared(nodeid: str) -> str | None:
    """The model, shard and group of an item whose group shares work per input
    (``minilm-shard2of4-one-forward``): what its unit's items have in common, its seed included. None for
    any other item."""
    match = _GROUPED.search(nodeid)
    return match[1] if match else None


def unit_of(nodeid: str) -> str:
    """The unit of `nodeid`: its group's items of one model and shard (`shared`), else the item itself.
    (Also what `bertcheck.run.split` keeps on one machine.)"""
    match = _GROUPED.search(nodeid)
    return f"{match[2].replace('-', ' ')} [{match[1]}]" if match else nodeid


def sharing_group(definition) -> str | None:
    """The group `@pytest.mark.shares_forward(GROUP)` puts a property's definition in
    (`bertcheck.inputs.shards.GROUPS`; no argument: the read-only properties' one hooked forward), or None.
    ValueError, one line, for a group that does not exist."""
    marker = definition.get_closest_marker("shares_forward")
    if marker is None:
        return None
    group = marker.args[0] if marker.args else ONE_FORWARD
    if group not in GROUPS:
        raise ValueError(f"{definition.nodeid}: shares_forward({group!r}): the groups are {', '.join(GROUPS)}")
    return group


def dtype_order(item) -> tuple:
    """The sort key that puts items of one model with even shards first, then odd: under the default
    dtypes (float32, float64) a shard's parity is its dtype, so a worker taking items in this order
    converts bert-base between dtypes (~0.4 s) a few times per run, not once per item."""
    callspec = getattr(item, "callspec", None)
    shard = callspec.params.get("bertcheck_shard") if callspec is not None else None
    if shard is None:
        return (0,)
    model = callspec.params.get("bert")
    return (1, getattr(model, "model_name", str(model)), shard.index % 2)


def model_of(scope: str, models) -> str | None:
    """The model a unit's items check, of `models` (the run's model names): its node ids' parameters
    start with it (``[random:roberta-base-shard1of4-one-forward]``), the longest name that fits. None
    for an item on no model."""
    if not scope.endswith("]") or "[" not in scope:
        return None
    params = scope[scope.rindex("[") + 1 : -1]
    fits = [m for m in models if params == m or params.startswith(m + "-")]
    return max(fits, key=len) if fits else None


class OneForwardScheduling(LoadScopeScheduling):
    """`models`: the run's model names. A worker that asks for work is handed, of the units left, the
    first of the model it ran last while that model has any: a run over several base-size models (the
    whole family) then holds about one model per worker (`bertcheck.subjects.subject.MODELS_SHARE`
    drops the others), instead of every worker loading every model in turn."""

    def __init__(self, config, log=None, models=()):
        super().__init__(config, log)
        self.models = tuple(models)
        self._last_model: dict = {}

    def _split_scope(self, nodeid: str) -> str:
        return unit_of(nodeid)

    def _assign_work_unit(self, node) -> None:
        last = self._last_model.get(node)
        if last is not None and len(self.models) > 1:
            same = next((scope for scope in self.workqueue if model_of(scope, self.models) == last), None)
            if same is not None:
                self.workqueue.move_to_end(same, last=False)
        scope = next(iter(self.workqueue))
        self._last_model[node] = model_of(scope, self.models) or last
        super()._assign_work_unit(node)
