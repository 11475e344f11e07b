"""Everything that differs between transformers 4.33.2 (the seed's) and 5.x, in one place."""

from __future__ import annotations


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
