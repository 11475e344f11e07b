"""What the layer and model properties do with a candidate's outputs: name them, ask them finite, compare them.

Outputs are keyed by full vocabulary name (`bertcheck.spec.names`): a layer's ``blocks.{i}.resid_post`` and
any intermediates it gives; a model's hidden states as ``embed.out`` then each layer's
``blocks.{i}.resid_post`` (`names.state_name`), and any named intermediates. The place a failure names ("embeddings",
"layer 3") comes from the name.
"""

from __future__ import annotations

import torch

from bertcheck.properties.failures import Judge
from bertcheck.spec.tolerances import Tolerance


def scores_on_kept_keys(scores: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """(B, nh, T, T) -> (B, T, nh, T) with masked keys zeroed: what a padding constant (-inf, -1e4,
    finfo.min) is does not matter, only that the key is masked, which `pattern` checks. Query rows
    first, so that real query rows are what is compared."""
    keep = mask[:, None, None, :].bool()
    return torch.where(keep, scores, torch.zeros_like(scores)).transpose(1, 2)


def comparable(name: str, value: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """`value` as compared: attention scores and patterns by query row, masked keys zeroed; the rest as is."""
    return scores_on_kept_keys(value, mask) if name.endswith((".attn_scores", ".pattern")) else value


def require_finite(judge: Judge, name: str, value: torch.Tensor, mask: torch.Tensor) -> None:
    """Fail naming `name` where an output holds a NaN or an infinity. A masked key's attention score may
    be any large negative number, -inf included (it only has to vanish in the softmax, which `pattern`
    checks): its finiteness is not asked."""
    __tracebackhide__ = True
    shown = scores_on_kept_keys(value, mask) if name.endswith(".attn_scores") else value
    bad = ~torch.isfinite(shown)
    if bool(bad.any()):
        at = tuple(int(i) for i in bad.nonzero()[0])
        raise judge.fail(
            None,
            name,
            "finite values everywhere, padded positions included",
            [
                f"{int(bad.sum())} of {bad.numel()} elements are NaN or infinite; the first at index {at}: "
                f"{float(shown[at])}"
            ],
        )


def outputs_close(
    judge: Judge,
    actual: dict,
    expected: dict,
    tol: Tolerance | dict[str, Tolerance],
    expectation: str,
    *,
    tokens=True,
    suffix=None,
) -> float:
    """Compare every output of `expected` (in its order) with `actual`'s; `tol` one tolerance or one per
    name; `suffix(name)` adds to the expectation (a model's ``(hidden_states[3])``). The worst share of
    the tolerance; the first output that differs fails, naming its layer."""
    __tracebackhide__ = True
    worst = 0.0
    for name, wanted in expected.items():
        within = tol[name] if isinstance(tol, dict) else tol
        text = f"{expectation} ({suffix(name)})" if suffix else expectation
        worst = max(worst, judge.same(name, actual[name], wanted, within, text, tokens=tokens))
    return worst
