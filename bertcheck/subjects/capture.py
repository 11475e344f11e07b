"""Record every activation of the vocabulary in one forward of an HF `BertModel`.

Output hooks read what a module returns; pre-hooks read a LayerNorm's input, which is the residual
add's output (no module returns it). Hooks are removed even when the forward raises.
"""

from __future__ import annotations

from contextlib import contextmanager

import torch

from bertcheck.spec.family import embed_hooks
from bertcheck.spec.names import LAYER_HOOKS, Hook, layer_module, layer_name


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
    for i in range(config.num_hidden_layers):
        for name, hook in LAYER_HOOKS.items():
            points[layer_name(i, name)] = Hook(layer_module(i, hook.module), hook.kind)
    return points


def _first(value):
    return value[0] if isinstance(value, (tuple, list)) else value


@contextmanager
def _hooked(model, points: dict[str, Hook], store: Activations, finished: dict[str, object] | None = None):
    """Hook `points` on `model` while the block runs; then note which names never came or came twice.

    `finished` maps a module path to a callback run once, when that module first returns, after
    `store.missing` and `store.repeated` are settled for the names seen so far: the streaming
    checks read a layer there and drop its activations before the next layer runs."""
    modules = dict(model.named_modules())
    handles, calls = [], {}

    reading = []  # non-empty while a callback runs: the HF modules it calls (a LayerNorm run on
    # a captured input, say) are the checks', not the forward's, and are not recorded

    def record(name, value):
        if reading:
            return
        calls[name] = calls.get(name, 0) + 1
        store[name] = value.detach()

    def settle():
        store.missing = {name: hook.module for name, hook in points.items() if name not in store and name not in calls}
        store.repeated = {name: n for name, n in calls.items() if n > 1}

    fired = set()
    try:
        for name, hook in points.items():
            module = modules.get(hook.module)
            if module is None:  # replaced or removed: reported as never run by the check that needs it
                continue
            if hook.kind == "pre":

                def pre(module, args, kwargs, name=name):
                    record(name, args[0] if args else kwargs["hidden_states"])

                handles.append(module.register_forward_pre_hook(pre, with_kwargs=True))
            else:

                def post(module, args, output, name=name):
                    record(name, _first(output))

                handles.append(module.register_forward_hook(post))
        # After the points' hooks: a module that is both a point and a `finished` path (ELECTRA-small's
        # embeddings_project, which gives embed.out) records its output before its callback reads it.
        for path, callback in (finished or {}).items():
            if path in modules:

                def done(module, args, output, path=path, callback=callback):
                    if (
                        path not in fired and not reading
                    ):  # a module run twice is reported by `repeated`, not read twice
                        fired.add(path)
                        settle()
                        reading.append(path)
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
    finished: dict[str, object] | None = None,
) -> Activations:
    """One forward with `output_hidden_states=True`; every vocabulary activation, by full name.

    `finished` (module path -> callback) streams: see `_hooked`. A callback may delete names from
    `store` (pass your own) once it has read them."""
    points = hook_points(model.config)
    store = Activations() if store is None else store
    with _hooked(model, points, store, finished), torch.no_grad():
        out = model(
            input_ids=input_ids,
            attention_mask=attention_mask,
            token_type_ids=token_type_ids,
            output_hidden_states=True,
            return_dict=True,
        )
    store.hidden_states = tuple(h.detach() for h in out.hidden_states)
    store.last_hidden_state = out.last_hidden_state.detach()
    return store


def capture_layer(layer, hidden_states, attention_mask, index: int = 0) -> Activations:
    """One HF BertLayer on generated states; its activations under ``blocks.{index}.*``, and what it
    returned as `last_hidden_state`."""
    from bertcheck.subjects._compat import run_layer

    points = {layer_name(index, name): hook for name, hook in LAYER_HOOKS.items()}  # paths relative to the layer
    store = Activations()
    with _hooked(layer, points, store), torch.no_grad():
        store.last_hidden_state = run_layer(layer, hidden_states, attention_mask).detach()
    return store
