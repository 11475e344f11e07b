"""Bugs of transformers itself that bertcheck's properties find, each where it shows: which property, which
family member, which releases and inputs, and what it is. A run that meets one expects it to fail (an
`XFAIL` with the reason under pytest) and turns red the day it no longer does, so a fixed release is seen."""

from __future__ import annotations

import torch

from bertcheck.spec.family import of_config
from bertcheck.subjects._compat import transformers_major


def _version() -> str:
    import transformers

    return transformers.__version__


def known_bug(key: str, config, dtype: torch.dtype | None = None) -> str | None:
    """The bug of the installed transformers that property `key` finds on `config`'s member in `dtype`, in
    words; None where none is known."""
    member = of_config(config)
    if transformers_major() >= 5:
        return None  # both below are 4.x's: 5.x rewrote the attention and dropped head_mask
    if member.model_type == "albert" and key == "form-head-mask-one-head" and config.num_hidden_layers > 1:
        return (
            f"transformers {_version()}'s AlbertTransformer hands layer i the head_mask row of its group's first "
            "layer (it slices head_mask[group * layers_per_group:] and its one inner layer reads row 0 of that), "
            "not row i: every layer of a group runs with its first layer's row"
        )
    eager = (getattr(config, "_attn_implementation", None) or "eager") == "eager"
    if member.model_type == "distilbert" and key in ("padding", "padded-row") and eager and dtype == torch.float64:
        return (
            f"transformers {_version()}'s DistilBERT eager attention masks with torch.tensor(finfo(float64).min), "
            "which torch makes a float32 tensor, -inf: a fully padded row's softmax is 0/0, NaN, in float64"
        )
    return None
