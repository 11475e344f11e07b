"""The regression `bertcheck bench` plants for its failing run, loaded with ``-p bertcheck.tools.planted``:
every layer's GELU with its forward exact and its backward wrong, as a fused kernel with a hand-written
backward can be. Only the gradients property can see it, and shrinking its failure is the heaviest
failing path there is (float64 backwards of bert-base). Users' runs never load it.
"""

from __future__ import annotations

import pytest
import torch


class _GeluWrongBackward(torch.autograd.Function):
    """The exact erf GELU forward; a backward that uses the sigmoid approximation's derivative."""

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return torch.nn.functional.gelu(x)

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        s = torch.sigmoid(1.702 * x)
        return grad * (s + 1.702 * x * s * (1 - s))


def _forward(self, hidden_states):
    return _GeluWrongBackward.apply(self.dense(hidden_states))


def gelu_wrong_backward(model, layer: int | None = None) -> None:
    """Every layer's (or one layer's) `BertIntermediate`: GELU's forward exact, its backward wrong. Once
    per module: planting twice changes nothing."""
    for each in model.encoder.layer if layer is None else [model.encoder.layer[layer]]:
        module = each.intermediate
        if type(module).__name__ != "GeluWrongBackward":
            module.__class__ = type("GeluWrongBackward", (type(module),), {"forward": _forward})


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_call(item):
    """Before each item that checks a model: plant the regression in the model it was handed (copies in
    other dtypes are made from it, and so carry it)."""
    bert = getattr(item, "funcargs", {}).get("bert")
    if bert is not None:
        gelu_wrong_backward(bert.model())
