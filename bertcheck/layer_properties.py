"""Metamorphic properties of one encoder layer, fed generated hidden states rather than embeddings.

Generated states reach what token embeddings never do: variance ~1e-6 (where an eps of 1e-5 for
1e-12 shows even in float32) and magnitudes ~100. Each property runs the HF layer of the model under
test (a private copy where it operates on weights) and names the layer and activation that breaks.
"""

from __future__ import annotations

import copy
import shlex
from dataclasses import dataclass

import torch

from bertcheck._compat import run_layer
from bertcheck.capture import capture_layer
from bertcheck.failures import Check, Unavailable
from bertcheck.names import layer_name
from bertcheck.reference import layer_norm
from bertcheck.subject import Bert, Observation
from bertcheck.tolerances import tolerances_for
from bertcheck.worst import record

SCALES = {"unit": 1.0, "low": 1e-3, "large": 100.0}  # standard deviation of the generated states
# Properties that go through attention draw from these only. A BERT layer's input is a LayerNorm output
# (|x| ~ |gamma|); at std 100, attention logits reach ~1e4, where float32 rounds a logit by ~1e-3 and
# softmax moves by ~0.1%: the comparison would measure softmax conditioning, not correctness (float64
# shows the same at ~2e-11). Large magnitudes go to the LayerNorm and feed-forward properties.
ATTENTION_SCALES = ("unit", "low")
RELATIVE_PERMUTATION = "with relative position scores a layer sees token order: permuting tokens changes its output by design"


@dataclass(frozen=True)
class LayerCase:
    """Generated input for one layer: (batch, tokens, hidden) states drawn from `seed` at `scale`,
    the last `pad` tokens of every row but the first padded."""

    layer: int
    batch: int
    tokens: int
    pad: int
    scale: str
    seed: int
    dtype: torch.dtype = torch.float32
    device: str = "cpu"

    def states(self, hidden_size: int) -> tuple[torch.Tensor, torch.Tensor]:
        gen = torch.Generator().manual_seed(self.seed)
        x = torch.randn(self.batch, self.tokens, hidden_size, generator=gen, dtype=torch.float64, device="cpu") * SCALES[self.scale]
        mask = torch.ones(self.batch, self.tokens, dtype=torch.long, device="cpu")
        if self.pad:
            mask[1:, self.tokens - self.pad :] = 0
        return x.to(self.dtype).to(self.device), mask.to(self.device)

    @property
    def texts(self):  # what PropertyFailure shows as the input
        return ()

    def describe(self, model: str) -> list[str]:
        return [
            f"model: {model}   dtype: {str(self.dtype).removeprefix('torch.')}   device: {self.device}   layer: {self.layer}",
            f"hidden states: batch {self.batch}, tokens {self.tokens}, padded {self.pad} (rows 1+), "
            f"std {SCALES[self.scale]:g} ({self.scale}), seed {self.seed}",
        ]

    def reproduce(self, model: str, check: str) -> str:
        args = ["python", "-m", "bertcheck", "check-layer", check, "--model", model, "--layer", str(self.layer),
                "--batch", str(self.batch), "--tokens", str(self.tokens), "--pad", str(self.pad), "--scale", self.scale,
                "--seed", str(self.seed), "--dtype", str(self.dtype).removeprefix("torch."), "--device", self.device]  # fmt: skip
        return shlex.join(args)


def _start(bert: Bert, case: LayerCase, key: str, title: str):
    x, mask = case.states(bert.config.hidden_size)
    obs = Observation(case=case, model=bert.name, inputs={"attention_mask": mask}, acts=None)
    layer = bert.model(case.dtype, case.device).encoder.layer[case.layer]
    return Check(key, title, obs), layer, x, mask


def layer_equivalence(bert: Bert, case: LayerCase) -> float:
    """The HF layer equals the reference layer on generated states, activation by activation."""
    __tracebackhide__ = True
    check, layer, x, mask = _start(bert, case, "layer-equivalence", "layer equivalence on generated states")
    tol = tolerances_for(case.dtype).values
    acts = capture_layer(layer, x, mask, case.layer)
    with torch.no_grad():
        expected = bert.reference(case.dtype, case.device).layer(case.layer, x, mask)
    worst = 0.0
    for name, value in acts.items():
        worst = max(worst, check.close(f"layer {case.layer}", name, value, expected[name], tol, f"{name.split('.')[-1]} == reference"))
    return worst


def permutation_equivariance(bert: Bert, case: LayerCase) -> float:
    """A layer has no position information: permuting the tokens permutes its output."""
    __tracebackhide__ = True
    check, layer, x, mask = _start(bert, case, "permutation", "permutation equivariance")
    if bert.relative_positions:
        raise Unavailable(RELATIVE_PERMUTATION)
    order = torch.randperm(case.tokens, generator=torch.Generator().manual_seed(case.seed + 1), device="cpu").to(x.device)
    with torch.no_grad():
        out = run_layer(layer, x, mask)
        permuted = run_layer(layer, x[:, order], mask[:, order])
    return check.close(f"layer {case.layer}", layer_name(case.layer, "resid_post"), permuted, out[:, order],
                       tolerances_for(case.dtype).values, "layer(x[:, perm]) == layer(x)[:, perm]",
                       tokens=mask[:, order].bool())  # fmt: skip


def ffn_locality(bert: Bert, case: LayerCase) -> float:
    """The feed-forward acts on each token alone: changing one token's resid_mid changes only its mlp_out."""
    __tracebackhide__ = True
    check, layer, x, mask = _start(bert, case, "ffn-locality", "feed-forward token locality")
    token = case.seed % case.tokens
    changed = x.clone()
    changed[:, token] = changed[:, token] * -2.0 + 1.0
    with torch.no_grad():
        before = layer.output.dense(layer.intermediate(x))
        after = layer.output.dense(layer.intermediate(changed))
    others = mask.bool().clone()
    others[:, token] = False
    return check.close(f"layer {case.layer}", layer_name(case.layer, "mlp_out"), after, before,
                       tolerances_for(case.dtype).values, f"mlp_out of every token but {token} unchanged when token {token} changes",
                       tokens=others)  # fmt: skip


def layernorm_affine_invariance(bert: Bert, case: LayerCase) -> float:
    """LN(a*x + b) == LN(x) for a > 0 and any shift b, up to the eps term: exactly a LayerNorm of x
    with eps / a^2. Checked on both LayerNorms of the layer."""
    __tracebackhide__ = True
    check, layer, x, mask = _start(bert, case, "layernorm-invariance", "LayerNorm scale and shift invariance")
    tol = tolerances_for(case.dtype).values
    # The shift is in units of the data: a shift of 0.75 on states of std 1e-3 would lose ~2e-5 of
    # their precision in float32 while forming a*x + b, before any LayerNorm runs.
    a, b = 3.0, 0.75 * SCALES[case.scale]
    eps = bert.config.layer_norm_eps
    worst = 0.0
    for short, module in (("resid_mid", layer.attention.output.LayerNorm), ("resid_post", layer.output.LayerNorm)):
        with torch.no_grad():
            actual = module(a * x + b)
            expected = layer_norm(x, module.weight, module.bias, eps / a**2)
        worst = max(worst, check.close(f"layer {case.layer}", layer_name(case.layer, short), actual, expected, tol,
                                       f"LN({a:g} * x + {b:g}) == LN(x) with eps / {a**2:g}"))  # fmt: skip
    return worst


def residual_probes(bert: Bert, case: LayerCase) -> float:
    """Weight surgery isolates each residual: with the attention output dense zeroed the first add &
    norm is LN1(resid_pre); with the feed-forward output dense zeroed the layer output is LN2(resid_mid)."""
    __tracebackhide__ = True
    check, layer, x, mask = _start(bert, case, "residual-probes", "residual probes by weight surgery")
    tol = tolerances_for(case.dtype).values
    eps = bert.config.layer_norm_eps
    worst = 0.0
    for dense, ln, residual, output in (
        ("attention.output.dense", "attention.output.LayerNorm", "resid_pre", "resid_mid"),
        ("output.dense", "output.LayerNorm", "resid_mid", "resid_post"),
    ):
        probed = copy.deepcopy(layer)
        with torch.no_grad():
            for param in probed.get_submodule(dense).parameters():
                param.zero_()
        acts = capture_layer(probed, x, mask, case.layer)
        norm = probed.get_submodule(ln)
        name = layer_name(case.layer, output)
        with torch.no_grad():
            expected = layer_norm(acts[layer_name(case.layer, residual)], norm.weight, norm.bias, eps)
        worst = max(worst, check.close(f"layer {case.layer}", name, acts[name], expected, tol,
                                       f"with {dense} zeroed, {output} == LN({residual})"))  # fmt: skip
    return worst


LAYER_PROPERTIES = {
    "layer-equivalence": layer_equivalence,
    "permutation": permutation_equivariance,
    "ffn-locality": ffn_locality,
    "layernorm-invariance": layernorm_affine_invariance,
    "residual-probes": residual_probes,
}


def verify_layer(bert: Bert, case: LayerCase, check: str) -> float:
    """Run layer property `check` on one generated case; returns its worst share of the tolerance."""
    __tracebackhide__ = True
    if check not in LAYER_PROPERTIES:
        raise ValueError(f"unknown layer property {check!r}; known: {', '.join(LAYER_PROPERTIES)}")
    return record(check, bert.name, LAYER_PROPERTIES[check](bert, case))
