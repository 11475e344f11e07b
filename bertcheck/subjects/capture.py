"""Record every activation of the vocabulary in one forward of an HF `BertModel`.

Output hooks read what a module returns; pre-hooks read a LayerNorm's input, which is the residual
add's output (no module returns it). Hooks are removed even when the forward raises.

A module that several layers share (ALBERT's groups) is hooked once and gives its k-th run to the k-th
layer that uses it, in layer order: every use is captured, and checked, as a layer of its own.
"""

from __future__ import annotations

from contextlib import contextmanager

import torch

from bertcheck.spec.family import embed_hooks, layer_path, of_config, types_given
from bertcheck.spec.names import LAYER_HOOKS, Hook, layer_name


class Activations(dict):
    """Activations by full name (``blocks.3.ln1_in``), plus ``hidden_states`` and ``last_hidden_state``.

    A forward that skipped a module, or ran one twice, still returns: `missing` and `repeated` say
    which names are not trustworthy, and the checks that need them report it as a property failure.
    """

    hidden_states: tuple[torch.Tensor, ...]
    last_hidden_state: torch.Tensor
    missing: dict[str, str]  # name -> module path that never ran
    repeated: dict[str, int]  # name -> how many times its module ran


def hook_points(config) -> dict[str, Hook]:
    """Every captured full name of a model with `config` mapped to its absolute HF module path and hook
    kind (the embeddings' as its family member has them: `bertcheck.spec.family.embed_hooks`)."""
    points = dict(embed_hooks(config))
    hooks = of_config(config).layer_hooks()
    for i in range(config.num_hidden_layers):
        at = layer_path(config, i)
        for name, hook in hooks.items():
            points[layer_name(i, name)] = Hook(f"{at}.{hook.module}" if hook.module else at, hook.kind)
    return points


def _first(value):
    return value[0] if isinstance(value, (tuple, list)) else value


@contextmanager
def _hooked(model, points: dict[str, Hook], store: Activations, finished: list[tuple[str, object]] | None = None):
    """Hook `points` on `model` while the block runs; then note which names never came or came twice.

    `finished` holds (module path, callback) pairs, each callback run once, when its module returns (the
    k-th callback of a path at its k-th return), after `store.missing` and `store.repeated` are settled
    for the names seen so far: the streaming checks read a layer there and drop its activations before
    the next layer runs."""
    modules = dict(model.named_modules())
    handles, calls = [], {}

    reading = []  # non-empty while a callback runs: the HF modules it calls (a LayerNorm run on
    # a captured input, say) are the checks', not the forward's, and are not recorded

    def record(name, value):  # never while `reading`: the hooks below ask first, and take no run then
        calls[name] = calls.get(name, 0) + 1
        store[name] = value.detach()

    def settle():
        store.missing = {name: hook.module for name, hook in points.items() if name not in store and name not in calls}
        store.repeated = {name: n for name, n in calls.items() if n > 1}

    # One hook per (module, kind): its k-th run is the k-th name that reads it, in layer order (a module
    # of one layer has one name; a run past the last is that name's again, reported by `repeated`).
    uses: dict[tuple[str, str], list[str]] = {}
    for name, hook in points.items():
        uses.setdefault((hook.module, hook.kind), []).append(name)
    try:
        for (path, kind), names in uses.items():
            module = modules.get(path)
            if module is None:  # replaced or removed: reported as never run by the check that needs it
                continue
            runs = iter(range(len(names)))

            def next_name(names=names, runs=runs):
                return names[next(runs, len(names) - 1)]

            if kind == "pre":

                def pre(module, args, kwargs, next_name=next_name):
                    if not reading:
                        record(next_name(), args[0] if args else kwargs["hidden_states"])

                handles.append(module.register_forward_pre_hook(pre, with_kwargs=True))
            else:

                def post(module, args, output, next_name=next_name):
                    if not reading:
                        record(next_name(), _first(output))

                handles.append(module.register_forward_hook(post))
        # After the points' hooks: a module that is both a point and a `finished` path (ELECTRA-small's
        # embeddings_project, which gives embed.out) records its output before its callback reads it.
        # A path several layers share (ALBERT's) runs its callbacks one per return, in order.
        waiting: dict[str, list] = {}
        for path, callback in finished or ():
            waiting.setdefault(path, []).append(callback)
        for path, callbacks in waiting.items():
            if path in modules:

                def done(module, args, output, callbacks=callbacks):
                    # a module run more often than it has callbacks is reported by `repeated`, not read twice
                    if callbacks and not reading:
                        callback = callbacks.pop(0)
                        settle()
                        reading.append(callback)
                        try:
                            callback()
                        finally:
                            reading.pop()

                handles.append(modules[path].register_forward_hook(done))
        yield
    finally:
        for handle in handles:
            handle.remove()
    settle()


def capture(
    model,
    input_ids,
    attention_mask=None,
    token_type_ids=None,
    *,
    store: Activations | None = None,
    finished: list[tuple[str, object]] | None = None,
) -> Activations:
    """One forward with `output_hidden_states=True`; every vocabulary activation, by full name.

    `finished` ((module path, callback) pairs) streams: see `_hooked`. A callback may delete names from
    `store` (pass your own) once it has read them."""
    points = hook_points(model.config)
    store = Activations() if store is None else store
    with _hooked(model, points, store, finished), torch.no_grad():
        out = model(
            input_ids=input_ids,
            attention_mask=attention_mask,
            **types_given(token_type_ids),  # DistilBERT's forward takes none
            output_hidden_states=True,
            return_dict=True,
        )
    store.hidden_states = tuple(h.detach() for h in out.hidden_states)
    store.last_hidden_state = out.last_hidden_state.detach()
    return store


def capture_layer(layer, hidden_states, attention_mask, index: int = 0, config=None) -> Activations:
    """One HF layer (BertLayer, or the layer of `config`'s member: ALBERT's AlbertLayer) on generated
    states; its activations under ``blocks.{index}.*``, and what it returned as `last_hidden_state`."""
    from bertcheck.subjects._compat import run_layer

    hooks = of_config(config).layer_hooks() if config is not None else LAYER_HOOKS
    points = {layer_name(index, name): hook for name, hook in hooks.items()}  # paths relative to the layer
    store = Activations()
    with _hooked(layer, points, store), torch.no_grad():
        store.last_hidden_state = run_layer(layer, hidden_states, attention_mask).detach()
    return store
