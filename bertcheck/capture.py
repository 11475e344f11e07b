"""Record every activation of the vocabulary in one forward of an HF `BertModel`.

Output hooks read what a module returns; pre-hooks read a LayerNorm's input, which is the residual
add's output (no module returns it). Hooks are removed even when the forward raises.
"""

from __future__ import annotations

from contextlib import contextmanager

import torch

from bertcheck.names import EMBED_HOOKS, LAYER_HOOKS, Hook, layer_module, layer_name


class Activations(dict):
    """Activations by full name (``blocks.3.ln1_in``), plus ``hidden_states`` and ``last_hidden_state``.

    A forward that skipped a module, or ran one twice, still returns: `missing` and `repeated` say
    which names are not trustworthy, and the checks that need them report it as a property failure.
    """

    hidden_states: tuple[torch.Tensor, ...]
    last_hidden_state: torch.Tensor
    missing: dict[str, str]  # name -> module path that never ran
    repeated: dict[str, int]  # name -> how many times its module ran


def hook_points(n_layers: int) -> dict[str, Hook]:
    """Every captured full name mapped to its absolute HF module path and hook kind."""
    points = dict(EMBED_HOOKS)
    for i in range(n_layers):
        for name, hook in LAYER_HOOKS.items():
            points[layer_name(i, name)] = Hook(layer_module(i, hook.module), hook.kind)
    return points


def _first(value):
    return value[0] if isinstance(value, (tuple, list)) else value


@contextmanager
def _hooked(model, points: dict[str, Hook], store: Activations):
    """Hook `points` on `model` while the block runs; then note which names never came or came twice."""
    modules = dict(model.named_modules())
    handles, calls = [], {}

    def record(name, value):
        calls[name] = calls.get(name, 0) + 1
        store[name] = value.detach()

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
        yield
    finally:
        for handle in handles:
            handle.remove()
    store.missing = {name: hook.module for name, hook in points.items() if name not in store}
    store.repeated = {name: n for name, n in calls.items() if n > 1}


def capture(model, input_ids, attention_mask=None, token_type_ids=None) -> Activations:
    """One forward with `output_hidden_states=True`; every vocabulary activation, by full name."""
    points = hook_points(model.config.num_hidden_layers)
    store = Activations()
    with _hooked(model, points, store), torch.no_grad():
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
    """One HF BertLayer on generated states; its activations under ``blocks.{index}.*``."""
    from bertcheck._compat import run_layer

    points = {layer_name(index, name): hook for name, hook in LAYER_HOOKS.items()}  # paths relative to the layer
    store = Activations()
    with _hooked(layer, points, store), torch.no_grad():
        run_layer(layer, hidden_states, attention_mask)
    return store
