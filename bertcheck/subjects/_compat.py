"""Everything that differs between transformers 4.33.2 (the seed's) and 5.x, in one place."""

from __future__ import annotations

import inspect


def attention_implementations(config=None) -> list[str]:
    """The attention implementations BERT (or the family member of `config`) can run with on CPU here:
    eager always, sdpa where its model class supports it (`_supports_sdpa`).

    transformers 4.33 has only eager BERT attention; BERT gained sdpa later. Each member gained it in its
    own release: on 4.57 ELECTRA, ERNIE and Data2VecText have eager only. flash and flex attention need
    CUDA kernels and are not counted.
    """
    import transformers

    from bertcheck.spec.family import of_config

    model_class = getattr(transformers, "BertPreTrainedModel" if config is None else of_config(config).model_class)
    return ["eager", "sdpa"] if getattr(model_class, "_supports_sdpa", False) else ["eager"]


def set_attention(model, implementation: str) -> None:
    """Make `model` (a private copy: the config is per model) run `implementation`.

    5.x reads config._attn_implementation at every forward; 4.33 has no such field and runs eager.
    4.41-4.57 chose each layer's attention *class* at construction (BERT_SELF_ATTENTION_CLASSES) and
    kept the choice in `model.attn_implementation` for its mask: setting the config alone left an
    "eager" copy running SDPA, so eager-sdpa compared SDPA with itself there and could not fail.
    """
    have = attention_implementations(model.config)
    if implementation not in have:
        raise ValueError(f"attention {implementation!r} is not available for {type(model).__name__} here; have {have}")
    from bertcheck.spec.family import spec_config

    model.config._attn_implementation = implementation
    classes = _attention_classes(model)
    if classes is None:
        return
    if hasattr(model, "attn_implementation"):
        model.attn_implementation = implementation
    stock = set(classes.values())
    for module in list(model.modules()):
        if isinstance(module, tuple(stock)):
            _rebase(module, stock, classes[implementation])
            module.dropout_prob = spec_config(model.config).attention_probs_dropout_prob  # what SDPA classes read


def _attention_classes(model) -> dict | None:
    """4.41-4.57's table of a member's attention classes by implementation, from the module that defines
    its model class: `BERT_SELF_ATTENTION_CLASSES` (each member's copy: RoBERTa's, ELECTRA's, ...) or
    ALBERT's `ALBERT_ATTENTION_CLASSES`, whose attention holds its output dense and LayerNorm too. None on
    4.33 (eager only) and 5.x (the config decides at each forward)."""
    import sys

    for cls in type(model).__mro__:  # a user's subclass of BertModel: the module of the class it derives from
        defining = vars(sys.modules.get(cls.__module__) or object)
        for name, value in defining.items():
            if name.endswith("ATTENTION_CLASSES") and isinstance(value, dict) and "eager" in value:
                return value
    return None


def _rebase(module, stock: set, target: type) -> None:
    """Give `module` the class `target` in place of the stock class it derives from, keeping any
    subclass on top (a user's override, a broken model under test): only the implementation changes."""
    module.__class__ = _rebased(type(module), stock, target)


def _rebased(cls: type, stock: set, target: type) -> type:
    if cls in stock:
        return target
    own = {k: v for k, v in vars(cls).items() if k not in ("__dict__", "__weakref__")}
    return type(cls.__name__, (_rebased(cls.__bases__[0], stock, target),), own)


def run_layer(layer, hidden_states, attention_mask):
    """One HF BertLayer (or a member's: ALBERT's AlbertLayer) on (B, T, H) states with a (B, T) 1/0 mask;
    returns (B, T, H).

    Both ends accept the additive (B, 1, 1, T) float mask (eager adds it; sdpa takes it as attn_mask);
    4.33 returns a tuple, 5.x the tensor.
    """
    from bertcheck.spec.reference import additive_mask

    if "attn_mask" in inspect.signature(layer.forward).parameters:  # 4.x DistilBERT's TransformerBlock
        classes = _attention_classes(layer) or {}
        sdpa = classes.get("sdpa")
        # Its eager attention masks where a (B, T) mask is 0 (`mask == 0`, an additive mask would invert it);
        # its SDPA class hands the mask to torch as an additive one.
        eager = sdpa is None or not isinstance(layer.attention, sdpa)
        mask = attention_mask if eager else additive_mask(attention_mask, hidden_states.dtype)
        out = layer(hidden_states, attn_mask=mask)
    else:
        out = layer(hidden_states, additive_mask(attention_mask, hidden_states.dtype))
    return out[0] if isinstance(out, (tuple, list)) else out


def transformers_major() -> int:
    import transformers

    return int(transformers.__version__.split(".")[0])


def accepts_4d_mask() -> bool:
    """Whether BertModel takes an additive (B, 1, T, T) or (B, 1, 1, T) mask: 5.x does; 4.33.2 raises
    'Wrong shape for input_ids or attention_mask'. (Verified on those two ends only.)"""
    return transformers_major() >= 5
