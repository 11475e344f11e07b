"""Metamorphic properties, written once for a layer and a whole model alike: determinism, batching,
padding and token permutation.

Each runs a `Subject`: something called on inputs whose tensors all start (batch, tokens, ...), one
of them the (B, T) ``attention_mask``, giving outputs by vocabulary name (`bertcheck.properties.outputs`). A
layer's subject is fed hidden states (`bertcheck.properties.layer_properties`), a model's token ids
(`bertcheck.properties.model_properties`); the HF model, bertcheck's reference and a user's reimplementation are
all subjects the same way.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

from bertcheck.properties.failures import Judge
from bertcheck.properties.outputs import outputs_close
from bertcheck.spec.tolerances import EXACT, Tolerance


@dataclass
class Subject:
    """One candidate on one example, as the metamorphic properties see it."""

    judge: Judge
    inputs: dict[str, torch.Tensor]
    call: Callable[[dict], dict[str, torch.Tensor]]  # inputs -> outputs by full name (validated, finite)
    tolerance: Tolerance | dict[str, Tolerance]  # how far two of its outputs may be apart (per name, or one)
    scribble: Callable[[dict, torch.Tensor], dict]  # (inputs, where) -> other values of the same kind there
    room: int  # positions that may be appended to the inputs (the longest input it takes, less T)
    max_batch: int | None = None  # the largest batch it takes (`bertcheck.runs`; None: any)
    row: str = "row"  # what a batch row is called in messages: "row" of states, "text" of ids
    values: str = "values"  # what sits at a position: "values" (states), "ids"
    suffix: Callable[[str], str] | None = None  # what a message adds to an output's name

    @property
    def mask(self) -> torch.Tensor:
        return self.inputs["attention_mask"]

    def close(self, actual: dict, expected: dict, tolerance, expectation: str, *, tokens=True) -> float:
        __tracebackhide__ = True
        return outputs_close(self.judge, actual, expected, tolerance, expectation, tokens=tokens, suffix=self.suffix)


def _rows(outputs: dict, index) -> dict:
    return {name: value[index] for name, value in outputs.items()}


def _tokens(outputs: dict, index) -> dict:
    """Positions `index` of each output that has a token axis (B, T, ...); one per row (the pooler's, (B, H)) as is."""
    return {name: value[:, index] if value.dim() >= 3 else value for name, value in outputs.items()}


def determinism(s: Subject) -> float:
    """The same input twice gives bit for bit the same outputs."""
    __tracebackhide__ = True
    first = s.call(s.inputs)
    second = s.call({key: value.clone() for key, value in s.inputs.items()})
    return s.close(second, first, EXACT, "a second forward == the first, bit for bit")


def batching(s: Subject) -> float:
    """Each row run alone, trimmed to its real tokens, equals that row in the padded batch; and reversing
    the batch reverses the outputs."""
    __tracebackhide__ = True
    together = s.call(s.inputs)
    B, T = s.mask.shape
    worst = 0.0
    for b in range(B):
        n = int(s.mask[b].sum())
        if B == 1 and n == T:
            continue  # alone is the batch itself: a call compared with itself is the determinism property
        if n == 0:
            continue  # a fully padded row has no real token to run alone; its finiteness is asked of every call
        alone = s.call({key: value[b : b + 1, :n] for key, value in s.inputs.items()})
        in_batch = _tokens(_rows(together, slice(b, b + 1)), slice(None, n))
        worst = max(
            worst,
            s.close(
                in_batch,
                alone,
                s.tolerance,
                f"{s.row} {b} of the batch == the same {s.row} alone, unpadded",
                tokens=False,
            ),
        )
    if B > 1:
        order = torch.arange(B - 1, -1, -1, device=s.mask.device)
        back = order.argsort()
        reversed_out = s.call({key: value[order] for key, value in s.inputs.items()})
        worst = max(
            worst, s.close(_rows(reversed_out, back), together, s.tolerance, "reversing the batch reverses the outputs")
        )
    return worst


# The longest input a fully padded row is appended to by `padding`: every text and almost every layer
# input of the default budget; past it the extra row would double the cost of a 512-token example.
BLANK_ROW_TOKENS = 128


def padding(s: Subject, more: int = 5) -> float:
    """What sits at padded positions never reaches a real token: other values there, `more` padded
    positions appended (where the model takes them), or a fully padded row appended to the batch (a
    batch filled up to a fixed size in serving; up to `BLANK_ROW_TOKENS` tokens) leave every real token's
    outputs unchanged, and every output stays finite, the padded row's included (a softmax over keys all
    masked with -inf is 0/0 there, and a masked mean pooling turns NaN x 0 into NaN)."""
    __tracebackhide__ = True
    out = s.call(s.inputs)
    padded = s.mask == 0
    worst = 0.0
    B, T = s.mask.shape
    if T <= BLANK_ROW_TOKENS and (s.max_batch is None or B < s.max_batch):
        first = {key: value[:1] for key, value in s.inputs.items()}  # its own values at every position
        everywhere = torch.ones_like(first["attention_mask"], dtype=torch.bool)
        blank = s.scribble({**first, "attention_mask": torch.zeros_like(first["attention_mask"])}, everywhere)
        with_blank = {key: torch.cat([value, blank[key]]) for key, value in s.inputs.items()}
        worst = s.close(
            _rows(s.call(with_blank), slice(None, B)),
            out,
            s.tolerance,
            f"real tokens unchanged by a fully padded {s.row} appended to the batch",
        )
    if bool(padded.any()):
        # Each variant's outputs are compared and dropped at once, never two beside `out`: at 512 tokens in
        # float64 a model candidate's outputs for bert-base are ~150 MB a call.
        worst = max(
            worst,
            s.close(
                s.call(s.scribble(s.inputs, padded)),
                out,
                s.tolerance,
                f"real tokens unchanged by other {s.values} at padded positions",
            ),
        )
    extra = min(more, s.room)
    if extra > 0:
        longer = {
            key: torch.cat([value, value[:, -1:].expand(B, extra, *value.shape[2:])], dim=1)
            for key, value in s.inputs.items()
        }
        longer["attention_mask"][:, T:] = 0
        appended = torch.zeros_like(longer["attention_mask"], dtype=torch.bool)
        appended[:, T:] = True
        worst = max(
            worst,
            s.close(
                _tokens(s.call(s.scribble(longer, appended)), slice(None, T)),
                out,
                s.tolerance,
                f"real tokens unchanged by {extra} more padded positions",
            ),
        )
    return worst


def permutation(s: Subject, seed: int) -> float:
    """Nothing tells a position apart: permuting the tokens permutes every output."""
    __tracebackhide__ = True
    T = s.mask.shape[1]
    order = torch.randperm(T, generator=torch.Generator().manual_seed(seed), device="cpu").to(s.mask.device)
    out = s.call(s.inputs)
    permuted = s.call({key: value[:, order] for key, value in s.inputs.items()})
    return s.close(
        permuted,
        {name: value[:, order] for name, value in out.items()},
        s.tolerance,
        "layer(x[:, perm]) == layer(x)[:, perm]",
        tokens=s.mask[:, order].bool(),
    )
