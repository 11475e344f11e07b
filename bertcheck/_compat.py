"""Everything that differs between transformers 4.33.2 (the seed's) and 5.x, in one place."""

from __future__ import annotations

import torch


def attention_implementations() -> list[str]:
    """The attention implementations BERT can run with on CPU here: eager always, sdpa where supported.

    transformers 4.33 has only eager BERT attention; BERT gained sdpa later (`_supports_sdpa`).
    flash and flex attention need CUDA kernels and are not counted.
    """
    from transformers import BertPreTrainedModel

    return ["eager", "sdpa"] if getattr(BertPreTrainedModel, "_supports_sdpa", False) else ["eager"]


def set_attention(model, implementation: str) -> None:
    """Make `model` (a private copy: the config is per model) run `implementation`."""
    if implementation not in attention_implementations():
        raise ValueError(f"attention {implementation!r} is not available here; have {attention_implementations()}")
    # 5.x reads config._attn_implementation at every forward; 4.33 has no such field and runs eager.
    model.config._attn_implementation = implementation


def run_layer(layer, hidden_states, attention_mask):
    """One HF BertLayer on (B, T, H) states with a (B, T) 1/0 mask; returns (B, T, H).

    Both ends accept the additive (B, 1, 1, T) float mask (eager adds it; sdpa takes it as attn_mask);
    4.33 returns a tuple, 5.x the tensor.
    """
    keep = attention_mask[:, None, None, :].to(hidden_states.dtype)
    additive = (1.0 - keep) * torch.finfo(hidden_states.dtype).min
    out = layer(hidden_states, additive)
    return out[0] if isinstance(out, (tuple, list)) else out


def accepts_4d_mask() -> bool:
    """Whether BertModel takes an additive (B, 1, T, T) or (B, 1, 1, T) mask: 5.x does; 4.33.2 raises
    'Wrong shape for input_ids or attention_mask'. (Verified on those two ends only.)"""
    import transformers

    return int(transformers.__version__.split(".")[0]) >= 5
