"""Known deviations from BERT, to name what an engine most likely got wrong when its outputs differ.

An engine or an export gives its final outputs only; its insides cannot be hooked. When such a candidate
fails end to end, the reference is rerun from the same ids under each entry of this catalogue (a named
variant of the reference, `ReferenceBert.deviating`), and the entries whose outputs are far closer to
the candidate's than the spec's are named. "The last hidden state differs by 3e-3" becomes "your
engine uses the tanh GELU".

A variant explains a failure when the candidate is within `EXPLAINS` of it, relative to how far the
candidate is from the spec: every bug in the catalogue moves the outputs by far more than rounding, so
the variant that matches the candidate's bug matches it to rounding error (measured: 1e-6 to 1e-5 of a
spec error of 1e-3 to 1 in float32), and the others stay as far off as the spec or further.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import torch

from bertcheck.spec.family import MEMBERS
from bertcheck.spec.names import layer_name
from bertcheck.spec.reference import ReferenceBert, _Converted, gelu_tanh

# A variant explains the candidate's outputs when it is at most this share of the spec's error from them.
EXPLAINS = 0.1


@dataclass(frozen=True)
class Deviation:
    """One known way an implementation departs from BERT: a name and the reference's knobs it turns."""

    name: str
    knobs: dict = field(hash=False)
    # ALBERT: the group of shared weights layer i runs, as the engine maps it, (i, layers, groups) -> group.
    regroup: Callable[[int, int, int], int] | None = field(default=None, hash=False, compare=False)

    def applies(self, reference: ReferenceBert, names) -> bool:
        """Whether it changes anything here: not an eps the config already has, not the pooler where no
        pooler output is compared, not a mapping of layers to groups the spec's own."""
        if self.regroup is not None:
            config, L = reference.config, reference.n_layers
            G = getattr(config, "num_hidden_groups", 1)
            spec = [reference.member.group_of(config, i) for i in range(L)]
            return "{group}" in reference.member.layers and [self.regroup(i, L, G) for i in range(L)] != spec
        if "eps" in self.knobs and self.knobs["eps"] == reference.eps:
            return False
        if "act" in self.knobs and self.knobs["act"] is reference.act:
            return False  # the activation the config already names (ALBERT's gelu_new is the tanh GELU)
        if "member" in self.knobs and reference.member.positions == self.knobs["member"].positions:
            return False  # BERT's own positions, on a member that numbers them as BERT does
        if "task_types" in self.knobs and not reference.task_types:
            return False  # no task-type embedding to drop
        return "pooler_tanh" not in self.knobs or "pooler.out" in names

    def variant(self, reference: ReferenceBert) -> ReferenceBert:
        """`reference` with this deviation's knobs turned (and, for a regrouping, its layers' weights read
        from the groups the engine runs them with), sharing its weights."""
        if self.regroup is None:
            return reference.deviating(**self.knobs)
        return reference.deviating(**self.knobs, w=_regrouped(reference, self.regroup))


def _regrouped(reference: ReferenceBert, regroup) -> dict:
    """The reference's weights with layer i reading those of group `regroup(i, L, G)` (ALBERT's groups: every
    layer of a group reads one tensor), the same tensors, none copied or converted."""
    config, L = reference.config, reference.n_layers
    G = getattr(config, "num_hidden_groups", 1)
    first: dict[int, int] = {}  # group -> the first layer that runs it in the spec
    for i in range(L):
        first.setdefault(reference.member.group_of(config, i), i)
    w = reference.w

    def source(key: str) -> str:
        if not key.startswith("encoder.layer."):
            return key
        i = int(key.split(".")[2])
        return key.replace(f"encoder.layer.{i}.", f"encoder.layer.{first[regroup(i, L, G)]}.", 1)

    raw = {key: dict.__getitem__(w, source(key)) for key in w}
    return _Converted(raw, w.dtype, w.device) if isinstance(w, _Converted) else raw


CATALOGUE = (
    Deviation("tanh-approximate GELU", {"act": gelu_tanh}),
    Deviation("LayerNorm eps 1e-5", {"eps": 1e-5}),
    Deviation("LayerNorm eps 1e-6", {"eps": 1e-6}),
    # Indistinguishable from the spec unless a real token's score is within ~1e4 of a masked one's: named
    # only where the candidate's outputs show it (scores of ~1e4, or a fully masked row).
    Deviation("a -10000 attention mask instead of the dtype's minimum", {"mask_value": -10000.0}),
    Deviation("no 1/sqrt(d) scaling of the attention scores", {"scaled": False}),
    Deviation("pre-LN: LayerNorm before each sublayer, not after its residual add", {"pre_ln": True}),
    Deviation("token types ignored (every token type 0)", {"token_types": False}),
    Deviation("positions off by one (position ids from 1)", {"position_offset": 1}),
    Deviation("the pooler without its tanh", {"pooler_tanh": False}),
    # The BERT family (`bertcheck.spec.family`): an engine written for BERT, pointed at a member's weights.
    Deviation("BERT's positions (0 .. T-1) on a RoBERTa-family model", {"member": MEMBERS["bert"]}),
    Deviation("ERNIE's task-type embedding dropped", {"task_types": False}),
    Deviation(
        "ALBERT's shared layers unrolled round-robin (layer i runs group i % num_hidden_groups)",
        {},
        regroup=lambda i, L, G: i % G,
    ),
    Deviation("ALBERT's group 0 run at every layer", {}, regroup=lambda i, L, G: 0),
)


def run_to(reference: ReferenceBert, inputs: dict, names) -> dict[str, torch.Tensor]:
    """The outputs `names` (hidden states by vocabulary name, ``pooler.out``) of `reference` run end to
    end from the ids, keeping only those."""
    from bertcheck.spec.names import state_name

    ids, mask, types = inputs["input_ids"], inputs["attention_mask"], inputs.get("token_type_ids")
    n = reference.n_layers
    wanted = set(names)
    with torch.no_grad():
        state = reference.embed(ids, types)["embed.out"]
        out = {"embed.out": state} if "embed.out" in wanted else {}
        for i in range(n):
            last = layer_name(i, "resid_post")
            state = reference.layer_keeping(i, state, mask, [last])[last]
            if state_name(i + 1) in wanted:
                out[state_name(i + 1)] = state
        if "pooler.out" in wanted:
            out["pooler.out"] = reference.pool(state)["pooler.out"]
    return out


@dataclass(frozen=True)
class Explained:
    """How far the candidate is from each variant, beside its distance from the spec."""

    spec: float
    variants: tuple[tuple[str, float], ...]

    @property
    def named(self) -> list[str]:
        return [name for name, error in self.variants if error <= EXPLAINS * self.spec]

    def lines(self) -> list[str]:
        width = max(len(name) for name, _ in self.variants)
        out = [
            "Likely cause: the reference rerun end to end under each known deviation from BERT "
            "(bertcheck.spec.deviations), max |candidate - variant| at real tokens, beside the spec's "
            f"{self.spec:.3g}:"
        ]
        for name, error in sorted(self.variants, key=lambda v: v[1]):
            mark = "  <- explains it" if name in self.named else ""
            out.append(f"  {name:<{width}}  {error:.3g}{mark}")
        if not self.named:
            out.append(
                "No known deviation explains it: every variant is off by at least a tenth of the spec's error. "
                "A difference spread over every output like this is what quantization (int8, fp8) or a "
                "lower-precision accumulation gives; otherwise it is a bug outside the catalogue."
            )
        return out


def explain(
    reference64: ReferenceBert, inputs: dict, actual: dict[str, torch.Tensor], real, spec: dict | None = None
) -> Explained:
    """The candidate's outputs `actual` (by vocabulary name) against the float64 `reference64` and each
    of its variants in the catalogue: one reference forward per entry. `spec`, where the failing check
    has them, are `reference64`'s own outputs on `inputs` (`run_to`), not computed again."""
    names = list(actual)

    def distance(wanted: dict) -> float:
        worst = 0.0
        for name, value in actual.items():
            diff = (value.double() - wanted[name]).abs()
            diff = diff if diff.dim() == 2 else diff[real]  # the pooler: one per row
            worst = max(worst, float(diff.nan_to_num(nan=float("inf")).max()) if diff.numel() else 0.0)
        return worst

    spec_error = distance(spec if spec is not None else run_to(reference64, inputs, names))
    variants = tuple(
        (d.name, distance(run_to(d.variant(reference64), inputs, names)))
        for d in CATALOGUE
        if d.applies(reference64, names)
    )
    return Explained(spec_error, variants)
