"""The properties of one encoder layer, each written once and run against a layer candidate: HF's own
layer (`HF_LAYER`), bertcheck's reference layer, or a user's factory, all handed the same HF layer.

They are fed generated hidden states (`LayerCase`), which reach what token embeddings never do:
variance ~1e-6 (where an eps of 1e-5 for 1e-12 shows even in float32) and magnitudes ~100. Each
returns its worst error as a share of the tolerance (1.0 the limit) and raises `PropertyFailure`
naming the layer and activation. In float16 and bfloat16 a candidate is held to the float64 reference
as closely as plain PyTorch is (`bertcheck.spec.low_precision`).
"""

from __future__ import annotations

import copy
from collections.abc import Callable

import torch

from bertcheck.properties import metamorphic
from bertcheck.subjects.candidate import HF_LAYER, LayerCandidate
from bertcheck.subjects.capture import capture_layer
from bertcheck.inputs.cases import SCALES, LayerCase
from bertcheck.properties.failures import Judge, Unavailable
from bertcheck.spec.low_precision import Yardstick, is_half
from bertcheck.spec.family import feed_forward, layer_of, submodule
from bertcheck.spec.names import LAYER_NAMES, layer_name
from bertcheck.properties.outputs import comparable, require_finite
from bertcheck.spec.reference import ReferenceBert, layer_norm, normalized_moments
from bertcheck.subjects.subject import Bert
from bertcheck.spec.tolerances import Tolerance, tolerances_for

RELATIVE_PERMUTATION = (
    "with relative position scores a layer sees token order: permuting tokens changes its output by design"
)


class LayerRun:
    """One layer property on one example: the candidate built over the HF layer the case names, the
    generated input, and the `Judge` that names failures (with the candidate, unless it is HF's own)."""

    def __init__(self, cand: LayerCandidate, bert: Bert, case: LayerCase, key: str, title: str):
        self.cand, self.bert, self.case, self.config = cand, bert, case, bert.config
        self.x, self.mask = case.states(bert.config.hidden_size)
        self.hf = layer_of(bert.model(case.dtype, case.device), case.layer)  # ALBERT's: its group's, shared
        self.judge = Judge(key, title, cand.wrap(case), bert.model_name, self.mask.bool())
        cand.follow(bert)
        key = (bert.model_name, case.layer, case.dtype, str(case.device))
        self.fn = cand.build(self.hf, bert.config, key=key, repair=bert.reload)

    def name(self, short: str) -> str:
        return layer_name(self.case.layer, short)

    def __call__(
        self, x: torch.Tensor | None = None, mask: torch.Tensor | None = None, fn=None
    ) -> dict[str, torch.Tensor]:
        """The candidate's outputs on (x, mask) (default: the example's), by full name, in forward order,
        each validated and finite."""
        __tracebackhide__ = True
        x, mask = (self.x, self.mask) if x is None else (x, mask)
        out = self.cand.call(fn or self.fn, x, mask, self.config)
        named = {self.name(short): out[short] for short in LAYER_NAMES if short in out}
        for name, value in named.items():
            require_finite(self.judge, name, value, mask)
        return named

    def edited(self, edit: Callable) -> tuple[torch.nn.Module, Callable]:
        """A copy of the HF layer changed by `edit` (weight surgery), and the candidate built over it."""
        probed = copy.deepcopy(self.hf)
        with torch.no_grad():
            edit(probed)
        return probed, self.cand.build(probed, self.config)

    def expected(
        self, hf_layer: torch.nn.Module | None = None, names=None
    ) -> tuple[dict[str, torch.Tensor], dict[str, Tolerance], dict[str, str]]:
        """What the spec says the layer `hf_layer` (default: the one the case names) gives on the example:
        the activations `names` (full names; None: every one) of the reference over its weights, each
        one's tolerance, and what that tolerance is (only those asked are kept: at 512 tokens in float64
        the attention scores and pattern are 25 MB a row each). In float32 and float64 the reference in
        that dtype and the table's tolerance; in half precision the float64 reference over the half
        weights, within twice the error plain PyTorch makes in that dtype (`Yardstick`)."""
        x, mask, i = self.x, self.mask, self.case.layer
        if not is_half(self.case.dtype):
            if hf_layer is None:
                reference, at = self.bert.reference(self.case.dtype, self.case.device), i
            else:
                reference, at = ReferenceBert.single_layer(hf_layer, self.config), 0
            with torch.no_grad():
                if names is None:
                    acts = reference.layer(at, x, mask)
                else:  # a few rows at a time, keeping only those asked (`ReferenceBert.layer_keeping`)
                    acts = reference.layer_keeping(at, x, mask, [layer_name(at, n.split(".", 2)[2]) for n in names])
            acts = {self.name(k.split(".", 2)[2]): v for k, v in acts.items()}
            acts = {name: comparable(name, value, mask) for name, value in acts.items()}
            tol = tolerances_for(self.case.dtype).values
            return acts, dict.fromkeys(acts, tol), dict.fromkeys(acts, "reference")
        hf_layer = self.hf if hf_layer is None else hf_layer
        exact = ReferenceBert.single_layer(hf_layer, self.config, dtype=torch.float64)
        plain = ReferenceBert.single_layer(hf_layer, self.config)  # the reference's ops, run in the half dtype
        real = mask.bool()
        with torch.no_grad():
            wanted = {self.name(k.split(".", 2)[2]): v for k, v in exact.layer(0, x.double(), mask).items()}
            ops = {self.name(k.split(".", 2)[2]): v for k, v in plain.layer(0, x, mask).items()}
        theirs = {self.name(k.split(".", 2)[2]): v for k, v in capture_layer(hf_layer, x, mask, 0, self.config).items()}
        wanted = {
            name: comparable(name, value, mask) for name, value in wanted.items() if names is None or name in names
        }
        yardsticks = {
            name: Yardstick.of(self.case.dtype, theirs.get(name), comparable(name, ops[name], mask), want, real)
            for name, want in wanted.items()
        }
        tols = {name: b.tolerance() for name, b in yardsticks.items()}
        return wanted, tols, {name: f"the float64 reference, {b.says()}" for name, b in yardsticks.items()}

    def between(self) -> Tolerance:
        """How far two of the candidate's outputs may be apart: the table's tolerance in float32 and
        float64; in half precision twice what each may be off the exact value at resid_post."""
        if not is_half(self.case.dtype):
            return tolerances_for(self.case.dtype).values
        _, tols, _ = self.expected(names=[self.name("resid_post")])
        resid_post = tols[self.name("resid_post")]
        return Tolerance(0.0, 2 * resid_post.atol)

    def subject(self) -> metamorphic.Subject:
        """This candidate as the metamorphic properties run it: on {hidden_states, attention_mask}, its
        output alone compared."""
        out = self.name("resid_post")

        def call(inputs):
            return {out: self(inputs["hidden_states"], inputs["attention_mask"])[out]}

        def scribble(inputs, where):
            # Other states of the same scale (not huge: the classic -10000 additive mask is a correct BERT,
            # and logits of ~1e5 would leak through it), seeded on the CPU, the same on every device.
            x = inputs["hidden_states"]
            gen = torch.Generator().manual_seed(self.case.seed + 2)
            noise = torch.randn(x.shape, generator=gen, dtype=torch.float64, device="cpu").to(x.device)
            return {**inputs, "hidden_states": torch.where(where[..., None], (noise * self.x.double().std()).to(x), x)}

        return metamorphic.Subject(
            judge=self.judge,
            inputs={"hidden_states": self.x, "attention_mask": self.mask},
            call=call,
            tolerance=self.between(),
            scribble=scribble,
            room=max(
                0, min(self.bert.max_length, self.cand.runs.max_tokens or self.bert.max_length) - self.case.tokens
            ),
            max_batch=self.cand.runs.max_batch,
        )


# ---- equivalence with the spec ------------------------------------------------------------------


def layer_equivalence(cand: LayerCandidate, bert: Bert, case: LayerCase) -> float:
    """The candidate's output, and every intermediate it gives, equal the reference layer's over the same
    weights, activation by activation in forward order (so a failure names the first that differs)."""
    __tracebackhide__ = True
    run = LayerRun(cand, bert, case, "layer-equivalence", "layer equivalence with the spec")
    out = run()
    wanted, tols, says = run.expected(names=list(out))
    worst = 0.0
    for name, value in out.items():
        short = name.split(".", 2)[2]
        worst = max(
            worst,
            run.judge.same(
                name,
                comparable(name, value, run.mask),
                wanted[name],
                tols[name],
                f"{short} == {says[name]} {short}",
            ),
        )
    return worst


def output_statistics(cand: LayerCandidate, bert: Bert, case: LayerCase) -> float:
    """With the output LayerNorm's affine made the identity (weight 1, bias 0), the layer output is the
    normalized value itself: per token, mean 0 and variance v / (v + eps), v the LayerNorm input's."""
    __tracebackhide__ = True
    run = LayerRun(cand, bert, case, "output-statistics", "post-LayerNorm output statistics")
    if is_half(case.dtype):  # a LayerNorm that accumulates in half precision shows in layer-equivalence instead
        raise Unavailable(
            f"LayerNorm statistics are judged in float32 and float64, not {str(case.dtype).removeprefix('torch.')}"
        )
    tols = tolerances_for(case.dtype)
    if tols.ln_mean is None:
        raise Unavailable(f"no LayerNorm statistics tolerance for {case.dtype}")

    def identity_affine(layer):
        norm = submodule(layer, bert.config, "output.LayerNorm")
        norm.weight.fill_(1.0)
        norm.bias.zero_()

    probed, fn = run.edited(identity_affine)
    name = run.name("resid_post")
    ln_in = capture_layer(probed, run.x, run.mask, case.layer, bert.config)[run.name("ln2_in")]
    mean, var, wanted = normalized_moments(run(fn=fn)[name], ln_in, bert.config.layer_norm_eps)
    worst = run.judge.same(
        name,
        mean,
        torch.zeros_like(mean),
        Tolerance(0.0, tols.ln_mean),
        "per-token mean 0 with the output LayerNorm's weight 1 and bias 0",
    )
    return max(
        worst,
        run.judge.same(
            name,
            var,
            wanted,
            Tolerance(0.0, tols.ln_var),
            "per-token variance v / (v + eps) with the output LayerNorm's weight 1 and bias 0",
        ),
    )


_PROBES = (  # (dense zeroed, its LayerNorm, the residual left, that LayerNorm's output)
    ("attention.output.dense", "attention.output.LayerNorm", "resid_pre", "resid_mid"),
    ("output.dense", "output.LayerNorm", "resid_mid", "resid_post"),
)


def residual_probes(cand: LayerCandidate, bert: Bert, case: LayerCase) -> float:
    """Weight surgery isolates each residual: with the attention output dense zeroed the first add & norm
    is LN1(resid_pre) alone; with the feed-forward output dense zeroed the output is LN2(resid_mid) alone.
    Where the candidate gives the residual and the LayerNorm's output, that identity is checked on its own
    values first; then its output against the reference over the same surgery. On low-variance states
    the first probe also exposes a wrong eps."""
    __tracebackhide__ = True
    run = LayerRun(cand, bert, case, "residual-probes", "residual probes by weight surgery")
    eps = bert.config.layer_norm_eps
    probes = []
    for dense, ln, residual, output in _PROBES:

        def zero(layer, dense=dense):
            for param in submodule(layer, bert.config, dense).parameters():
                param.zero_()

        probed, fn = run.edited(zero)
        kept = {run.name(n) for n in (residual, output, "resid_post")}
        out = {name: value for name, value in run(fn=fn).items() if name in kept}  # one probe's all at a time
        probes.append((probed, out, run.expected(probed, [run.name(output), run.name("resid_post")])))
    worst = 0.0
    for (dense, ln, residual, output), (probed, out, (_, tols, _)) in zip(_PROBES, probes):
        if run.name(residual) in out and run.name(output) in out:
            norm, res = submodule(probed, bert.config, ln), out[run.name(residual)]
            with torch.no_grad():
                if is_half(case.dtype):
                    expected = layer_norm(res.double(), norm.weight.double(), norm.bias.double(), eps)
                    tol = tols[run.name(output)]
                else:
                    expected, tol = layer_norm(res, norm.weight, norm.bias, eps), tolerances_for(case.dtype).values
            worst = max(
                worst,
                run.judge.same(
                    run.name(output),
                    out[run.name(output)],
                    expected,
                    tol,
                    f"with {dense} zeroed, {output} == LN({residual})",
                ),
            )
    for (dense, _, residual, _), (_, out, (wanted, tols, says)) in zip(_PROBES, probes):
        name = run.name("resid_post")
        worst = max(
            worst,
            run.judge.same(
                name,
                out[name],
                wanted[name],
                tols[name],
                f"with {dense} zeroed, resid_post == {says[name]}: the {residual} residual alone",
            ),
        )
    return worst


# ---- metamorphic ---------------------------------------------------------------------------------


def permutation(cand: LayerCandidate, bert: Bert, case: LayerCase) -> float:
    """A layer has no position information: permuting the tokens permutes its output."""
    __tracebackhide__ = True
    if bert.relative_positions:
        raise Unavailable(RELATIVE_PERMUTATION)
    return metamorphic.permutation(
        LayerRun(cand, bert, case, "permutation", "permutation equivariance").subject(), case.seed + 1
    )


def batching(cand: LayerCandidate, bert: Bert, case: LayerCase) -> float:
    """Each row run alone, trimmed to its real tokens, equals that row in the padded batch."""
    __tracebackhide__ = True
    return metamorphic.batching(LayerRun(cand, bert, case, "batching", "batch and padding-length invariance").subject())


def padding(cand: LayerCandidate, bert: Bert, case: LayerCase) -> float:
    """Other states at padded positions, or more padded positions, change no real token's output."""
    __tracebackhide__ = True
    return metamorphic.padding(LayerRun(cand, bert, case, "padding", "masked positions are ignored").subject())


def determinism(cand: LayerCandidate, bert: Bert, case: LayerCase) -> float:
    """The same input twice gives bit for bit the same output."""
    __tracebackhide__ = True
    return metamorphic.determinism(LayerRun(cand, bert, case, "determinism", "determinism").subject())


# ---- of HF's own modules: properties a candidate's function cannot be asked -------------------------


def ffn_locality(bert: Bert, case: LayerCase) -> float:
    """The feed-forward acts on each token alone: changing one token's resid_mid changes only its mlp_out."""
    __tracebackhide__ = True
    run = LayerRun(HF_LAYER, bert, case, "ffn-locality", "feed-forward token locality")
    layer, x = run.hf, run.x
    token = case.seed % case.tokens
    changed = x.clone()
    changed[:, token] = changed[:, token] * -2.0 + 1.0
    ffn = feed_forward(layer, bert.config)
    with torch.no_grad():
        before, after = ffn(x), ffn(changed)
    others = run.mask.bool().clone()
    others[:, token] = False
    return run.judge.same(
        run.name("mlp_out"),
        after,
        before,
        tolerances_for(case.dtype).values,
        f"mlp_out of every token but {token} unchanged when token {token} changes",
        tokens=others,
    )


def layernorm_affine_invariance(bert: Bert, case: LayerCase) -> float:
    """LN(a*x + b) == LN(x) for a > 0 and any shift b, up to the eps term: exactly a LayerNorm of x
    with eps / a^2. Checked on both LayerNorms of the layer."""
    __tracebackhide__ = True
    run = LayerRun(HF_LAYER, bert, case, "layernorm-invariance", "LayerNorm scale and shift invariance")
    tol = tolerances_for(case.dtype).values
    # The shift is in units of the data: a shift of 0.75 on states of std 1e-3 would lose ~2e-5 of
    # their precision in float32 while forming a*x + b, before any LayerNorm runs.
    a, b = 3.0, 0.75 * SCALES[case.scale]
    eps = bert.config.layer_norm_eps
    worst = 0.0
    for short, ln in (("resid_mid", "attention.output.LayerNorm"), ("resid_post", "output.LayerNorm")):
        module = submodule(run.hf, bert.config, ln)
        with torch.no_grad():
            actual = module(a * run.x + b)
            expected = layer_norm(run.x, module.weight, module.bias, eps / a**2)
        worst = max(
            worst,
            run.judge.same(
                run.name(short),
                actual,
                expected,
                tol,
                f"LN({a:g} * x + {b:g}) == LN(x) with eps / {a**2:g}",
            ),
        )
    return worst
