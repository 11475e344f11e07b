"""Every numerical tolerance bertcheck uses, in one table keyed by dtype.

Numbers come from measurements on a 2-core x86-64 CPU with torch 2.13 (docs/NUMERICS.md): the worst
error seen, then a margin. Never loosen one to get green: find out why it differs.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import torch


@dataclass(frozen=True)
class Tolerance:
    """`|actual - expected| <= atol + rtol * |expected|`, elementwise (rtol and atol always together).

    `scale` > 0 raises atol to `scale * max|expected|` of the tensor compared where that is larger: for
    outputs chained through many layers, whose rounding near 0 is a share of the largest value, not of
    their own (`CHAINED_SCALE`)."""

    rtol: float
    atol: float
    scale: float = 0.0

    def at(self, expected) -> "Tolerance":
        """This tolerance for the tensor `expected`: its atol raised by `scale` where that is larger."""
        if not self.scale or not expected.numel():
            return self
        atol = max(self.atol, self.scale * float(expected.detach().abs().max().nan_to_num(nan=0.0)))
        return Tolerance(self.rtol, atol)


@dataclass(frozen=True)
class DtypeTolerances:
    # Reference vs HF, values. Measured worst, real tokens only: float32 8.8e-6 chained over 6 layers
    # at L=512 on |h| up to ~10 (2.9e-6 per layer); float64 1.9e-14 chained, 6.2e-15 per layer.
    values: Tolerance
    # Per-token mean of the LayerNorm's normalized value z (should be 0).
    # Measured worst: float32 3.7e-8, float64 7e-17. None: not measured, the LayerNorm property refuses it.
    ln_mean: float | None = None
    # Per-token variance of z against v / (v + eps), v the input's variance.
    # Measured worst: float32 4.8e-7, float64 2.9e-15. None: as for ln_mean.
    ln_var: float | None = None
    # Gradients, reference vs HF, as a share of the model's largest |gradient|: a gradient sums over
    # every token and channel, and some are exactly 0 in exact arithmetic (the key bias: adding b to
    # every key adds q.b to all of a query's logits, which softmax ignores), so neither elementwise
    # nor per-tensor relative error means anything. Measured worst: float32 3.9e-6, float64 6.6e-15.
    grads: float | None = None


TOLERANCES: dict[torch.dtype, DtypeTolerances] = {
    # float32: 1e-5 is ~1.1x the worst chained error and ~3.5x the worst per-layer one. The rtol term
    # scales with |value|: float32 rounding is relative (2^-24) and trained models reach |h| ~ 48.
    # Per-element relative error alone reaches 1.8e-3 on entries near 0, so rtol never stands alone.
    # ln_mean 1e-6 is 27x the worst seen; ln_var 5e-6 is 10x, and still catches eps=1e-5 for 1e-12
    # wherever the input variance is below ~2 (eps/v > 5e-6).
    # grads 4e-5 is 10x the worst seen.
    # On cuda (an H200, torch 2.11, random bert-base, one batch of 7-512 tokens): 5.7e-6 per layer,
    # eager and sdpa (its math and efficient kernels; flash and cudnn refuse float32), so 1.75x to spare
    # there; chained 1.2e-5, which no float32 property compares against this row (end to end has its
    # own rule, below).
    torch.float32: DtypeTolerances(values=Tolerance(rtol=1e-5, atol=1e-5), ln_mean=1e-6, ln_var=5e-6, grads=4e-5),
    # float64: 1e-13 is ~5x the worst chained error and 1e8 below what a wrong eps (1e-5 for 1e-12)
    # does to a LayerNorm output, so that bug cannot pass. ln_mean 1e-15 is 14x, ln_var 3e-14 is 10x
    # the worst seen; eps/v for a wrong eps (>= 1e-6 at any v seen) is far outside.
    # grads 1e-13 is 15x the worst seen.
    torch.float64: DtypeTolerances(values=Tolerance(rtol=1e-13, atol=1e-13), ln_mean=1e-15, ln_var=3e-14, grads=1e-13),
    # bfloat16 (8-bit mantissa, unit roundoff 2^-9): only per layer against the float64 reference fed
    # HF's own bf16 hidden state, where the need was at most 0.016 (~4 ulps) on every layer of both
    # models, flat with depth; 0.04 is 2.5x that. Chained, the error grows with depth (0.16 by layer
    # 12 of bert-base), so no property compares bf16 chained. On cuda (H200, random bert-base, eager and
    # the SDPA kernels): 0.014-0.015 per layer, 0.11-0.20 chained: the same margin holds.
    torch.bfloat16: DtypeTolerances(values=Tolerance(rtol=0.04, atol=0.04)),
}

# End to end (an engine's last hidden state and pooler output, whose layer inputs it does not give): no
# fixed number. Each output is held, per input, to K_CHAINED = 4 times the error HF's own model makes end
# to end in that dtype against the float64 reference, plus one ulp at the output's largest value
# (`low_precision.Yardstick`, `model_properties.end_to_end`). 4, not FlashAttention's 2: a faithful engine
# summing the embeddings in another order was 2.96x HF's error at one element (`low_precision.K_CHAINED`).
# HF's float32 error grows with depth and,
# less, with length (worst of 3 inputs each, max |error| at real tokens, 2026-11-30):
#   MiniLM, hidden states 0..6:     7 tokens 6.5e-7 .. 3.9e-6; 137 tokens .. 4.3e-6; 512 tokens .. 6.4e-6
#   bert-base, hidden states 0..12: 7 tokens 6.3e-7 .. 4.1e-6; 143 tokens .. 8.4e-6; 512 tokens .. 9.8e-6
# about +0.7e-6 a layer at 512 tokens, x2.3 from 7 to 512 tokens. A fixed 1e-5 would have been too loose
# for a short MiniLM input (by 2.5x) and too tight for a long bert-base one. An ONNX export run by
# onnxruntime, faithful but fused differently, was 0.49-1.85x HF's error (MiniLM) and 0.88-1.72x
# (bert-base) on 28 inputs.

# Two of one model's outputs on related inputs (a text in a padded batch and alone, say), each chained
# through every layer, in float32: their difference is the rounding of two forwards, which grows with
# depth and with the size of the hidden states (matmuls round at the scale of their largest terms). Measured,
# real tokens: random bert-base, |h| up to ~5, at most 3.2e-6 (6.4e-7 of max|h|); random ALBERT-base, one
# layer's weights run twelve times, |h| up to 21, 1.1e-5 (5.9e-7 of max|h|), past the fixed 1e-5. So atol
# is 1e-6 of the largest |value| compared where that passes the table's 1e-5 (|h| > 10): 1.7x the worst
# share seen, and unchanged for every model whose states stay within 10 (both default models).
CHAINED_SCALE = {torch.float32: 1e-6}


def chained(dtype: torch.dtype) -> Tolerance:
    """The tolerance between two of one model's outputs each chained through every layer, in `dtype`:
    the table's, its atol growing with the values compared where `CHAINED_SCALE` says so."""
    return replace(tolerances_for(dtype).values, scale=CHAINED_SCALE.get(dtype, 0.0))


# The residual adds: in eval mode `LN input == dense output + residual` holds bit for bit (measured on
# every layer of both models, both dtypes, eager and sdpa): both sides add the same two tensors once.
EXACT = Tolerance(rtol=0.0, atol=0.0)


def tolerances_for(dtype: torch.dtype) -> DtypeTolerances:
    try:
        return TOLERANCES[dtype]
    except KeyError:
        known = ", ".join(str(d).removeprefix("torch.") for d in TOLERANCES)
        raise ValueError(f"no tolerances for {dtype}; bertcheck knows {known}") from None
