"""`bertcheck walk`: the seed notebook as a report. One sentence through the model, step by step.

Embeddings, then for each layer: self-attention -> first add & norm -> intermediate -> second add &
norm, each with its shape, the residual-identity error, HF's own LayerNorm statistics (its module run
with gain 1 and bias 0 on the captured input) and the error of the reference fed HF's layer input.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import torch

from bertcheck.subjects.capture import capture
from bertcheck.spec.compare import differences
from bertcheck.properties.one_forward import normalized
from bertcheck.spec.reference import normalized_moments
from bertcheck.inputs.cases import Case
from bertcheck.spec.family import module_path
from bertcheck.spec.names import EMBED_LN, LAYER_LNS, RESIDUAL_ADDS, layer_name
from bertcheck.subjects.subject import Bert
from bertcheck.spec.tolerances import tolerances_for


@dataclass
class Step:
    layer: int | None  # None: the embeddings
    what: str
    activation: str  # the full name whose shape is shown
    shape: tuple
    residual: float | None = None  # max |LN input - (sublayer + residual)|; must be exactly 0
    ln_mean: float | None = None  # max per-token |mean(z)|
    ln_var: float | None = None  # max per-token |var(z) - v/(v+eps)|
    reference: float | None = None  # max |HF - reference| over the step's output
    problems: list[str] = field(default_factory=list)


@dataclass
class Walk:
    model_name: str  # the model's
    sentence: str
    tokens: list[str]
    ids: list[int]
    steps: list[Step]

    @property
    def failed(self) -> bool:
        return any(step.problems for step in self.steps)

    def lines(self) -> list[str]:
        def num(v):
            return "-" if v is None else f"{v:.2g}"

        out = [
            f"bertcheck walk: {self.model_name}",
            f"sentence: {self.sentence!r}",
            f"tokens:   {self.tokens}",
            f"ids:      {self.ids}",
            "",
            f"{'step':<36}{'activation':<22}{'shape':<16}{'residual':>9}{'LN mean':>10}{'LN var':>10}{'ref vs HF':>11}",
        ]
        for s in self.steps:
            where = "embeddings" if s.layer is None else f"layer {s.layer:<2} {s.what}"
            where = s.what if s.layer is None else where
            shape = "[" + ", ".join(map(str, s.shape)) + "]"
            out.append(
                f"{where:<36}{s.activation:<22}{shape:<16}{num(s.residual):>9}{num(s.ln_mean):>10}{num(s.ln_var):>10}"
                f"{num(s.reference):>11}" + ("   <-- " + "; ".join(s.problems) if s.problems else "")
            )
        tol = self.tolerance
        out += [
            "",
            "residual: max |LN input - (sublayer + residual)|, must be 0 (bit for bit); "
            f"LN mean, LN var: max per-token "
            f"|mean z| and |var z - v/(v+eps)| (limits {tol.ln_mean:g}, {tol.ln_var:g}); ref vs HF: max |difference|, "
            f"the reference fed HF's own layer input (limit {tol.values.atol:g} + {tol.values.rtol:g}|x|).",
            "FAILED: see the marked steps" if self.failed else "every step holds",
        ]
        return out

    tolerance = tolerances_for(torch.float32)


def _ln_stats(module, x: torch.Tensor, eps: float) -> tuple[float, float]:
    mean, var, wanted = normalized_moments(normalized(module, x), x, eps)
    return float(mean.abs().max()), float((var - wanted).abs().max())


def _max_abs(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a.double() - b.double()).abs().max())


def walk(bert: Bert, sentence: str = "this is a test sentence", device: str = "cpu") -> Walk:
    """One float32 forward of `sentence` on `device`, checked step by step."""
    model = bert.model(torch.float32, device)
    inputs = bert.encode(Case((sentence,), device=device))
    acts = capture(model, **inputs)
    reference = bert.reference(torch.float32, device)
    modules = dict(model.named_modules())
    eps, mask = bert.config.layer_norm_eps, inputs["attention_mask"]

    def step(layer, what, name, expected, ln=None, **measured) -> Step:
        """The step that gives activation `name`, judged against the reference's `expected` value of it
        and, where `ln` names the LayerNorm module, against the LayerNorm statistics of its input."""
        if ln is not None:
            measured["ln_mean"], measured["ln_var"] = _ln_stats(modules[ln], acts[measured.pop("ln_input")], eps)
        found = Step(layer, what, name, tuple(acts[name].shape), reference=_max_abs(acts[name], expected), **measured)
        return _judge(found, acts[name], expected)

    with torch.no_grad():
        emb = reference.embed(inputs["input_ids"], inputs.get("token_type_ids"))
    steps = [
        step(
            None,
            "embeddings (word+pos+type, LN)",
            "embed.out",
            emb["embed.out"],
            EMBED_LN.module,
            ln_input=EMBED_LN.input,
        )
    ]
    for i in range(bert.config.num_hidden_layers):
        with torch.no_grad():
            ref = reference.layer(i, acts.hidden_states[i], mask)
        steps.append(step(i, "self-attention", layer_name(i, "z"), ref[layer_name(i, "z")]))
        for add, site, label in zip(RESIDUAL_ADDS, LAYER_LNS, ("first add & norm", "second add & norm")):
            if site is LAYER_LNS[1]:
                post = layer_name(i, "mlp_post")
                width = acts[post].shape[-1]
                steps.append(step(i, f"intermediate (width {width})", post, ref[post]))
                if width != bert.config.intermediate_size:
                    steps[-1].problems.append(
                        f"width {width}, config.intermediate_size is {bert.config.intermediate_size}"
                    )
            total = acts[layer_name(i, add.total)]
            residual = _max_abs(total, acts[layer_name(i, add.sublayer)] + acts[layer_name(i, add.residual)])
            out = layer_name(i, site.output)
            steps.append(
                step(
                    i,
                    label,
                    out,
                    ref[out],
                    module_path(bert.config, i, site.module),
                    ln_input=layer_name(i, add.total),
                    residual=residual,
                )
            )
    tokens = bert.tokenizer.convert_ids_to_tokens(inputs["input_ids"][0].tolist())
    return Walk(bert.model_name, sentence, tokens, inputs["input_ids"][0].tolist(), steps)


def _judge(step: Step, actual: torch.Tensor, expected: torch.Tensor) -> Step:
    """Add to `step` every limit it is past: the residual identity, the LayerNorm statistics, the reference."""
    tol = tolerances_for(torch.float32)
    if step.residual not in (None, 0.0):
        step.problems.append("residual identity broken")
    if step.ln_mean is not None and step.ln_mean > tol.ln_mean:
        step.problems.append(f"LN mean {step.ln_mean:.2g} > {tol.ln_mean:g}")
    if step.ln_var is not None and step.ln_var > tol.ln_var:
        step.problems.append(f"LN variance off by {step.ln_var:.2g} > {tol.ln_var:g}")
    if differences(actual, expected, tol.values)[0] is not None:
        step.problems.append("differs from the reference")
    return step


def plot(result: Walk, path: Path) -> None:
    """Per-layer reference-vs-HF error and LayerNorm statistics, log scale, to a PNG. Needs matplotlib."""
    import matplotlib

    matplotlib.use("Agg")  # files only: no display needed
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(1, 2, figsize=(12, 4.5))
    by_what: dict[str, tuple[list, list]] = {}
    for s in result.steps:
        key = "embeddings" if s.layer is None else s.what.split(" (")[0]
        xs, ys = by_what.setdefault(key, ([], []))
        xs.append(-1 if s.layer is None else s.layer)
        ys.append(max(s.reference or 0.0, 1e-18))
    for key, (xs, ys) in by_what.items():
        left.plot(xs, ys, marker="o", label=key)
    tol = result.tolerance
    left.axhline(tol.values.atol, color="red", linestyle="--", label=f"atol {tol.values.atol:g}")
    left.set(
        yscale="log", xlabel="layer (-1: embeddings)", ylabel="max |HF - reference|", title="reference vs HF, float32"
    )
    left.legend(fontsize=8)
    for stat, limit, marker in (("ln_mean", tol.ln_mean, "o"), ("ln_var", tol.ln_var, "s")):
        for label in ("embeddings", "first add & norm", "second add & norm"):
            pts = [
                (-1 if s.layer is None else s.layer, max(getattr(s, stat), 1e-18))
                for s in result.steps
                if getattr(s, stat) is not None
                and (s.what.startswith(label) if s.layer is not None else label == "embeddings")
            ]
            if pts:
                right.plot(*zip(*pts), marker=marker, label=f"{stat} {label}")
        right.axhline(limit, linestyle="--", color="gray")
    right.set(
        yscale="log",
        xlabel="layer (-1: embeddings)",
        ylabel="max per-token deviation",
        title="LayerNorm: |mean z|, |var z - v/(v+eps)|",
    )
    right.legend(fontsize=7)
    fig.suptitle(f"bertcheck walk: {result.model_name}: {result.sentence!r}")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
