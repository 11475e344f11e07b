"""float16 and bfloat16 candidates: judged against the error plain PyTorch makes in the same precision.

In half precision every implementation is off the exact value by rounding, by an amount that depends on
the input, the order of the ops and the kernels, so a fixed tolerance is either too tight for a faithful
kernel or too loose for a broken one. FlashAttention's tests judge a kernel by the error of a plain
PyTorch implementation in the same precision, both measured against a high-precision reference on the
same input (``max|out - out_ref| <= 2 * max|out_pt - out_ref| + atol``). Here, per activation and input:

- the reference is bertcheck's float64 reference with the layer's half-precision weights upcast (exactly)
  and fed the same input upcast (exactly);
- the yardstick is the larger error of the two plain PyTorch implementations at hand: HF's own
  layer in that dtype and the reference's ops run in that dtype. Neither alone is "the" error of the
  dtype: on the CPU (all-MiniLM-L6-v2's layers, 36 generated inputs per dtype and attention) the
  reference ops' worst error on one activation was 0.55x to 3.3x HF's in float16, 0.37x to 7.2x in bfloat16;
- a candidate passes when its worst error is at most ``K`` times the yardstick plus a floor of one unit
  in the last place at the activation's largest magnitude (for activations both compute exactly).

K = 2 is FlashAttention's: a faithful kernel that is as accurate as the worse of two plain PyTorch
implementations passes with a factor 2 to spare (faithful layers measured used at most 0.51-0.59 of the
allowance), while the broken kernels in tests/ fail: a softmax without its max subtracted overflows
float16, and a LayerNorm that sums its mean and variance term by term in the half dtype exceeds the
rule on most inputs: a rounding bug, it grows with the tokens in a row (on MiniLM's layers 0, 3, 5 at
8 and 32 tokens, batches 1 and 3: over on 22 of 24 inputs in float16 and 24 of 24 in bfloat16, by
1.1x and 1.45x in the median and up to 4.1x and 5.8x).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from bertcheck.spec.tolerances import Tolerance

K = 2.0
# End to end (an engine's last hidden state, `model_properties.end_to_end`) the rule is applied to the
# outputs of 6 or 12 chained layers, where a 1-ulp difference at the input grows with every layer: two
# faithful float32 implementations can then differ by more than twice in their worst error. Measured
# (2026-12-03, MiniLM, one torch thread, the sentence pair ['. . 本 "', 'ö ñ']): an engine in plain torch
# ops that sums the three embeddings as word + position + type was 3.85e-6 off the float64 reference
# at one element of 3,456, 2.96x HF's 1.29e-6; the same engine summing them as HF does (word + type, then
# position) 1.66e-6. K = 4 leaves 1.35x over that; the smallest deviation of the catalogue on the same
# input (LayerNorm eps 1e-6, 1.85e-4) is still 30x past it, and an int8 export (0.83) 10^5x.
K_CHAINED = 4.0
HALF = (torch.float16, torch.bfloat16)


def is_half(dtype: torch.dtype) -> bool:
    return dtype in HALF


@dataclass(frozen=True)
class Yardstick:
    """One activation on one input: how far plain PyTorch in `dtype` is from the float64 reference."""

    dtype: torch.dtype
    hf: float | None  # HF's own layer (None where HF does not expose the activation)
    ops: float | None  # the reference's ops run in `dtype` (None: not run, end to end)
    largest: float  # max |reference|: the scale of the floor
    k: float = K  # how many times the yardstick a candidate may be off: `K_CHAINED` end to end

    @classmethod
    def of(
        cls,
        dtype: torch.dtype,
        hf: torch.Tensor | None,
        ops: torch.Tensor | None,
        reference: torch.Tensor,
        real: torch.Tensor,
        k: float = K,
    ) -> "Yardstick":
        """The yardstick of one activation: HF's value (None where HF does not expose it) and the
        reference ops' value in `dtype` (None where not run), each against the float64 `reference`, at
        `real` tokens (every row of a (B, H) output, the pooler's)."""
        at = _real(reference, real)
        largest = float(reference[at].abs().max()) if bool(at.any()) else 0.0
        return cls(dtype, worst_error(hf, reference, real), worst_error(ops, reference, real), largest, k)

    @property
    def error(self) -> float:
        """The larger finite one: an error that overflowed (inf, NaN) never loosens the rule; with none
        finite, only the floor is left."""
        return max([e for e in (self.hf, self.ops) if e is not None and math.isfinite(e)], default=0.0)

    @property
    def floor(self) -> float:
        """One unit in the last place at the activation's largest magnitude: FlashAttention's
        ``2 * max|(out_ref + 0.3 - 0.3) - out_ref|``, the rounding of the largest value, for activations
        that both happen to compute exactly."""
        return torch.finfo(self.dtype).eps * self.largest

    def tolerance(self, sides: int = 1) -> Tolerance:
        """What a candidate may be off the reference (`sides` = 1), or two of its outputs off each other (2)."""
        return Tolerance(rtol=0.0, atol=sides * (self.k * self.error + self.floor))

    def says(self) -> str:
        dtype = str(self.dtype).removeprefix("torch.")
        if self.ops is None:
            return f"within {self.k:g}x the {dtype} error of HF's own model ({self.hf:.2g}) + {self.floor:.2g}"
        hf = "" if self.hf is None else f"HF's {self.hf:.2g}, "
        return (
            f"within {self.k:g}x the {dtype} error of plain PyTorch ({hf}the reference ops' {self.ops:.2g}) "
            f"+ {self.floor:.2g}"
        )


def worst_error(actual: torch.Tensor | None, reference: torch.Tensor, real: torch.Tensor) -> float | None:
    """max |actual - reference| at real tokens, in float64 (None for no `actual`; inf for NaN)."""
    if actual is None:
        return None
    diff = (actual.double() - reference)[_real(reference, real)].abs()
    return float(diff.nan_to_num(nan=float("inf")).max()) if diff.numel() else 0.0


def _real(reference: torch.Tensor, real: torch.Tensor) -> torch.Tensor:
    """Where to measure: the real tokens of a (B, T, ...) output; every row of a (B, H) one (the pooler's)."""
    if reference.dim() == 2:
        return torch.ones(reference.shape[0], dtype=torch.bool, device=reference.device)
    return real
