"""The properties applied to a reimplementation: the same spec, with the candidate where HF was.

Layer candidates are fed generated hidden states (`LayerCase`) and compared with the HF layer they were
built from; model candidates are fed generated sentences (`Case`) and compared with the HF model's
hooked forward. Every property returns its worst error as a share of the tolerance (1.0 is the limit)
and raises `PropertyFailure` naming the layer and activation.
"""

from __future__ import annotations

import copy
import json
import shlex
from dataclasses import asdict, dataclass

import torch

from bertcheck._compat import run_layer
from bertcheck.candidate import LayerCandidate, ModelCandidate
from bertcheck.capture import capture, capture_layer
from bertcheck.cases import Case
from bertcheck.failures import Check, Unavailable
from bertcheck.layer_properties import RELATIVE_PERMUTATION, LayerCase
from bertcheck.low_precision import Baseline, is_half
from bertcheck.names import layer_name
from bertcheck.reference import ReferenceBert
from bertcheck.subject import Bert, Observation
from bertcheck.tolerances import EXACT, Tolerance, tolerances_for


@dataclass(frozen=True)
class CandidateCase:
    """One generated input for a candidate, with what a failure needs to name it and rerun it."""

    inner: LayerCase | Case
    impl: str
    kind: str  # "layer" or "model"

    @property
    def texts(self):
        return self.inner.texts

    def describe(self, model: str) -> list[str]:
        return [f"candidate: {self.impl} ({self.kind} factory)", *self.inner.describe(model)]

    def example_json(self) -> str:
        return example_json(self.inner)

    def reproduce(self, model: str, check: str) -> str:
        option = "--impl" if self.kind == "layer" else "--model-impl"
        args = ["python", "-m", "bertcheck", "verify", option, self.impl, "--model", model,
                "--property", check, "--example", self.example_json()]  # fmt: skip
        return shlex.join(args)


def example_json(case: LayerCase | Case) -> str:
    """One example as JSON, for ``bertcheck verify --example``."""
    if isinstance(case, Case):
        fields = {"texts": json.loads(case.texts_json())}
    else:
        fields = {k: v for k, v in asdict(case).items() if k not in ("dtype", "device")}
    fields.update(dtype=str(case.dtype).removeprefix("torch."), device=case.device)
    return json.dumps(fields, ensure_ascii=True)


def example_from_json(kind: str, text: str) -> LayerCase | Case:
    """The inverse of `example_json`; ValueError saying what is wrong."""
    try:
        fields = json.loads(text)
        if not isinstance(fields, dict):
            raise ValueError("not a JSON object")
        dtype = getattr(torch, fields.pop("dtype", "float32"))
        device = fields.pop("device", "cpu")
        if kind == "model":
            return Case.from_json(json.dumps(fields.pop("texts")), dtype=dtype, device=device)
        case = LayerCase(**fields, dtype=dtype, device=device)
        if not (case.batch >= 1 and case.tokens >= 1 and 0 <= case.pad < case.tokens):
            raise ValueError("need batch >= 1, tokens >= 1 and 0 <= pad < tokens")
        return case
    except (ValueError, TypeError, KeyError, AttributeError) as err:
        raise ValueError(f"--example {text!r} is not a {kind} example ({err})") from None


# ---- layer candidates -----------------------------------------------------------------------------


def _start_layer(cand: LayerCandidate, bert: Bert, case: LayerCase, key: str, title: str):
    x, mask = case.states(bert.config.hidden_size)
    obs = Observation(case=CandidateCase(case, cand.name, "layer"), model=bert.name, inputs={"attention_mask": mask}, acts=None)
    hf = bert.model(case.dtype, case.device).encoder.layer[case.layer]
    cand.follow(bert)
    fn = cand.build(hf, bert.config, key=(bert.name, case.layer, case.dtype, str(case.device)))
    return Check(key, title, obs), hf, fn, x, mask


def _nonfinite(check: Check, where: str, name: str, value: torch.Tensor) -> None:
    __tracebackhide__ = True
    bad = ~torch.isfinite(value)
    if bool(bad.any()):
        at = tuple(int(i) for i in bad.nonzero()[0])
        raise check.fail(where, name, "finite values everywhere, padded positions included",
                         [f"{int(bad.sum())} of {bad.numel()} elements are NaN or infinite; the first at index {at}: "
                          f"{float(value[at])}"])  # fmt: skip


def _output(check: Check, cand: LayerCandidate, fn, x, mask, bert: Bert, layer: int) -> dict[str, torch.Tensor]:
    __tracebackhide__ = True
    out = cand.call(fn, x, mask, bert.config)
    for short, value in out.items():
        # A masked key's score may be any large negative number, -inf included (it only has to vanish in
        # the softmax, which `pattern` checks): its finiteness is not asked.
        shown = _scores_on_kept_keys(value, mask) if short == "attn_scores" else value
        _nonfinite(check, f"layer {layer}", layer_name(layer, short), shown)
    return out


def _expected_layer(bert: Bert, case: LayerCase, hf, x, mask) -> dict[str, torch.Tensor]:
    """Every activation of the HF layer on (x, mask) by short name; the two HF does not expose
    (attn_scores, pattern) from the reference, which the properties suite holds equal to HF."""
    acts = capture_layer(hf, x, mask, case.layer)
    with torch.no_grad():
        reference = bert.reference(case.dtype, case.device).layer(case.layer, x, mask)
    expected = {name.split(".", 2)[2]: value for name, value in reference.items()}
    expected.update({name.split(".", 2)[2]: value for name, value in acts.items()})
    return expected


def _scores_on_kept_keys(scores: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """(B, nh, T, T) -> (B, T, nh, T) with masked keys zeroed: what a padding constant (-inf, -1e4,
    finfo.min) is does not matter, only that the key is masked, which `pattern` checks."""
    keep = mask[:, None, None, :].bool()
    return torch.where(keep, scores, torch.zeros_like(scores)).transpose(1, 2)


def _baselines(bert: Bert, case: LayerCase, hf, x, mask) -> tuple[dict[str, torch.Tensor], dict[str, Baseline]]:
    """Half precision (`bertcheck.low_precision`): the float64 reference of the HF layer's own weights on
    the same input, every activation by short name, and each one's plain-PyTorch baseline."""
    exact = ReferenceBert.single_layer(hf, bert.config, dtype=torch.float64)
    plain = ReferenceBert.single_layer(hf, bert.config)  # the reference's ops, run in the half dtype
    acts = capture_layer(hf, x, mask, case.layer)
    real = mask.bool()
    with torch.no_grad():
        wanted = {name.split(".", 2)[2]: v for name, v in exact.layer(0, x.double(), mask).items()}
        ops = {name.split(".", 2)[2]: v for name, v in plain.layer(0, x, mask).items()}
    hf_acts = {name.split(".", 2)[2]: v for name, v in acts.items()}
    for short in ("attn_scores", "pattern"):
        wanted[short], ops[short] = _scores_on_kept_keys(wanted[short], mask), _scores_on_kept_keys(ops[short], mask)
    baselines = {short: Baseline.of(case.dtype, hf_acts.get(short), ops[short], want, real) for short, want in wanted.items()}
    return wanted, baselines


def _between_outputs(bert: Bert, case: LayerCase, hf, x, mask) -> Tolerance:
    """The tolerance between two of the candidate's outputs: the table's in float32 and float64; in half
    precision twice what each may be off the exact value (`Baseline.tolerance(sides=2)`) at resid_post,
    for the layer `hf` as the candidate was given it (a probed layer has errors of its own: LN1 of a
    std-1e-3 input alone is far less exact in float16 than the whole layer)."""
    if not is_half(case.dtype):
        return tolerances_for(case.dtype).values
    return _baselines(bert, case, hf, x, mask)[1]["resid_post"].tolerance(sides=2)


def layer_equivalence(cand: LayerCandidate, bert: Bert, case: LayerCase) -> float:
    """The candidate's output, and every intermediate it gives, equals the HF layer's (in half precision:
    is as close to the float64 reference as plain PyTorch is, `bertcheck.low_precision`)."""
    __tracebackhide__ = True
    check, hf, fn, x, mask = _start_layer(cand, bert, case, "layer-equivalence", "layer equivalence with HF")
    out = _output(check, cand, fn, x, mask, bert, case.layer)
    if is_half(case.dtype):
        wanted, baselines = _baselines(bert, case, hf, x, mask)
        worst = 0.0
        for short in ("resid_post", *(k for k in out if k != "resid_post")):
            actual = _scores_on_kept_keys(out[short], mask) if short in ("attn_scores", "pattern") else out[short]
            b = baselines[short]
            worst = max(worst, check.close(f"layer {case.layer}", layer_name(case.layer, short), actual, wanted[short],
                                           b.tolerance(), f"{short} == the float64 reference, {b.says()}"))  # fmt: skip
        return worst
    expected = _expected_layer(bert, case, hf, x, mask)
    tol = tolerances_for(case.dtype).values
    worst = 0.0
    for short in ("resid_post", *(k for k in out if k != "resid_post")):
        actual, wanted = out[short], expected[short]
        if short in ("attn_scores", "pattern"):
            actual, wanted = _scores_on_kept_keys(actual, mask), _scores_on_kept_keys(wanted, mask)
        worst = max(worst, check.close(f"layer {case.layer}", layer_name(case.layer, short), actual, wanted, tol,
                                       f"{short} == HF {short}"))  # fmt: skip
    return worst


def _surgery(hf, edit) -> torch.nn.Module:
    probed = copy.deepcopy(hf)
    with torch.no_grad():
        edit(probed)
    return probed


def output_statistics(cand: LayerCandidate, bert: Bert, case: LayerCase) -> float:
    """With the output LayerNorm's affine made the identity (weight 1, bias 0), the layer output is the
    normalized value itself: per token, mean 0 and variance v / (v + eps), v the LayerNorm input's."""
    __tracebackhide__ = True
    check, hf, _, x, mask = _start_layer(cand, bert, case, "output-statistics", "post-LayerNorm output statistics")
    if is_half(case.dtype):  # a LayerNorm that accumulates in half precision shows in layer-equivalence instead
        raise Unavailable(f"LayerNorm statistics are judged in float32 and float64, not {str(case.dtype).removeprefix('torch.')}")
    tols = tolerances_for(case.dtype)
    if tols.ln_mean is None:
        raise Unavailable(f"no LayerNorm statistics tolerance for {case.dtype}")

    def identity_affine(layer):
        layer.output.LayerNorm.weight.fill_(1.0)
        layer.output.LayerNorm.bias.zero_()

    probed = _surgery(hf, identity_affine)
    out = _output(check, cand, cand.build(probed, bert.config), x, mask, bert, case.layer)["resid_post"]
    ln_in = capture_layer(probed, x, mask, case.layer)[layer_name(case.layer, "ln2_in")].double()
    v = ln_in.var(dim=-1, unbiased=False)
    z = out.double()
    name, where = layer_name(case.layer, "resid_post"), f"layer {case.layer}"
    worst = check.close(where, name, z.mean(dim=-1), torch.zeros_like(v), Tolerance(0.0, tols.ln_mean),
                        "per-token mean 0 with the output LayerNorm's weight 1 and bias 0")  # fmt: skip
    expected_var = v / (v + bert.config.layer_norm_eps)
    return max(worst, check.close(where, name, z.var(dim=-1, unbiased=False), expected_var, Tolerance(0.0, tols.ln_var),
                                  "per-token variance v / (v + eps) with the output LayerNorm's weight 1 and bias 0"))  # fmt: skip


def residual_probes(cand: LayerCandidate, bert: Bert, case: LayerCase) -> float:
    """Weight surgery on the layer handed to the factory: with the attention output dense zeroed the
    first add & norm is LN1(resid_pre) alone; with the feed-forward output dense zeroed the output is
    LN2(resid_mid) alone. On low-variance states the first probe also exposes a wrong eps."""
    __tracebackhide__ = True
    check, hf, _, x, mask = _start_layer(cand, bert, case, "residual-probes", "residual probes by weight surgery")
    worst = 0.0
    for dense, residual in (("attention.output.dense", "resid_pre"), ("output.dense", "resid_mid")):

        def zero(layer, dense=dense):
            for param in layer.get_submodule(dense).parameters():
                param.zero_()

        probed = _surgery(hf, zero)
        out = _output(check, cand, cand.build(probed, bert.config), x, mask, bert, case.layer)["resid_post"]
        with torch.no_grad():
            expected = run_layer(probed, x, mask)
        worst = max(worst, check.close(f"layer {case.layer}", layer_name(case.layer, "resid_post"), out, expected,
                                       _between_outputs(bert, case, probed, x, mask),
                                       f"with {dense} zeroed, the output == HF's: the {residual} residual alone"))  # fmt: skip
    return worst


def permutation(cand: LayerCandidate, bert: Bert, case: LayerCase) -> float:
    """A layer has no position information: permuting the tokens permutes its output."""
    __tracebackhide__ = True
    if bert.relative_positions:
        raise Unavailable(RELATIVE_PERMUTATION)
    check, hf, fn, x, mask = _start_layer(cand, bert, case, "permutation", "permutation equivariance")
    order = torch.randperm(case.tokens, generator=torch.Generator().manual_seed(case.seed + 1), device="cpu").to(x.device)
    out = _output(check, cand, fn, x, mask, bert, case.layer)["resid_post"]
    permuted = _output(check, cand, fn, x[:, order], mask[:, order], bert, case.layer)["resid_post"]
    return check.close(f"layer {case.layer}", layer_name(case.layer, "resid_post"), permuted, out[:, order],
                       _between_outputs(bert, case, hf, x, mask), "layer(x[:, perm]) == layer(x)[:, perm]",
                       tokens=mask[:, order].bool())  # fmt: skip


def batching(cand: LayerCandidate, bert: Bert, case: LayerCase) -> float:
    """Each row run alone, trimmed to its real tokens, equals that row in the padded batch."""
    __tracebackhide__ = True
    check, hf, fn, x, mask = _start_layer(cand, bert, case, "batching", "batch and padding-length invariance")
    out = _output(check, cand, fn, x, mask, bert, case.layer)["resid_post"]
    tol = _between_outputs(bert, case, hf, x, mask)
    worst = 0.0
    for b in range(case.batch):
        n = int(mask[b].sum())
        if case.batch == 1 and n == case.tokens:
            continue  # alone is the batch itself: a call compared with itself is the determinism property
        alone = _output(check, cand, fn, x[b : b + 1, :n], mask[b : b + 1, :n], bert, case.layer)["resid_post"]
        worst = max(worst, check.close(f"layer {case.layer}", layer_name(case.layer, "resid_post"), out[b : b + 1, :n], alone,
                                       tol, f"row {b} in the batch == row {b} alone, unpadded",
                                       tokens=False))  # fmt: skip
    return worst


def padding(cand: LayerCandidate, bert: Bert, case: LayerCase) -> float:
    """What sits at padded positions never reaches a real token: replace it by other values of the same
    scale and every real token's output stays the same. (Same scale, not huge: the classic -10000
    additive mask is a correct BERT, and logits of ~1e5 would leak through it.)"""
    __tracebackhide__ = True
    check, hf, fn, x, mask = _start_layer(cand, bert, case, "padding", "masked positions are ignored")
    # Seeded on the CPU (the same noise on every device), then moved to the input's device before use.
    noise = torch.randn(x.shape, generator=torch.Generator().manual_seed(case.seed + 2), dtype=torch.float64, device="cpu").to(x.device)
    noisy = torch.where(mask.bool()[..., None], x, (noise * x.double().std()).to(x))
    out = _output(check, cand, fn, x, mask, bert, case.layer)["resid_post"]
    changed = _output(check, cand, fn, noisy, mask, bert, case.layer)["resid_post"]
    return check.close(f"layer {case.layer}", layer_name(case.layer, "resid_post"), changed, out,
                       _between_outputs(bert, case, hf, x, mask), "real tokens unchanged when padded positions change")  # fmt: skip


def determinism(cand: LayerCandidate, bert: Bert, case: LayerCase) -> float:
    """The same input twice gives bit for bit the same output."""
    __tracebackhide__ = True
    check, _, fn, x, mask = _start_layer(cand, bert, case, "determinism", "determinism")
    first = _output(check, cand, fn, x, mask, bert, case.layer)["resid_post"]
    second = _output(check, cand, fn, x.clone(), mask.clone(), bert, case.layer)["resid_post"]
    return check.close(f"layer {case.layer}", layer_name(case.layer, "resid_post"), second, first, EXACT,
                       "a second call == the first, bit for bit")  # fmt: skip


LAYER_CANDIDATE_PROPERTIES = {
    "layer-equivalence": layer_equivalence,
    "output-statistics": output_statistics,
    "residual-probes": residual_probes,
    "permutation": permutation,
    "batching": batching,
    "padding": padding,
    "determinism": determinism,
}
# Through attention, generated states stay at std 1 and 1e-3 (see layer_properties.ATTENTION_SCALES).


# ---- model candidates -----------------------------------------------------------------------------


def _start_model(cand: ModelCandidate, bert: Bert, case: Case, key: str, title: str):
    inputs = bert.encode(case)
    obs = Observation(case=CandidateCase(case, cand.name, "model"), model=bert.name, inputs=inputs, acts=None)
    hf = bert.model(case.dtype, case.device)
    cand.follow(bert)
    fn = cand.build(hf, key=(bert.name, case.dtype, str(case.device)))
    return Check(key, title, obs), hf, fn, inputs


def _model_output(check: Check, cand: ModelCandidate, fn, inputs, bert: Bert, dtype, *, states_only: bool = False) -> dict[str, torch.Tensor]:
    """The candidate's outputs, each validated and finite; with `states_only`, the hidden states alone
    are kept (what the metamorphic properties compare: at 512 tokens in float64 a layer's named
    intermediates are ~10 MB each, and two calls' worth are alive at once)."""
    __tracebackhide__ = True
    out = cand.call(fn, inputs, bert.config, dtype)
    for name, value in out.items():
        _nonfinite(check, _where(name), name, value)
    return {k: v for k, v in out.items() if k.startswith("hidden_states.")} if states_only else out


def _where(name: str) -> str:
    if name.startswith("hidden_states."):
        i = int(name.split(".")[1])
        return "embeddings" if i == 0 else f"layer {i - 1}"
    return "embeddings" if name.startswith("embed.") else f"layer {name.split('.')[1]}"


def _state_name(i: int) -> str:
    """The vocabulary name of hidden state i: the embeddings' output, then each layer's resid_post."""
    return "embed.out" if i == 0 else layer_name(i - 1, "resid_post")


def _states_close(check: Check, bert: Bert, actual: dict, expected: dict, tol: Tolerance | list[Tolerance], expectation: str,
                  *, tokens=True) -> float:  # fmt: skip
    """Compare every hidden state of two candidate outputs (`tol`: one tolerance, or one per hidden state);
    the worst share of the tolerance."""
    __tracebackhide__ = True
    worst = 0.0
    for i in range(bert.config.num_hidden_layers + 1):
        key, within = f"hidden_states.{i}", tol[i] if isinstance(tol, list) else tol
        worst = max(worst, check.close(_where(key), _state_name(i), actual[key], expected[key], within, expectation, tokens=tokens))
    return worst


def _model_baselines(bert: Bert, case: Case, hf, inputs) -> tuple[list[torch.Tensor], list[Baseline]]:
    """Half precision (`bertcheck.low_precision`): every hidden state of the float64 reference over the HF
    model's own half weights (upcast as read) on the same input, and each one's plain-PyTorch baseline:
    HF's model and the reference's ops, both run chained in the half dtype."""
    exact = ReferenceBert.from_hf(hf, dtype=torch.float64, lazy=True)
    plain = ReferenceBert.from_hf(hf)  # the reference's ops on the half weights themselves
    ids, mask, types = inputs["input_ids"], inputs["attention_mask"], inputs["token_type_ids"]
    with torch.no_grad():
        hf_states = hf(**inputs, output_hidden_states=True, return_dict=True).hidden_states
        wanted, ops = [exact.embed(ids, types)["embed.out"]], [plain.embed(ids, types)["embed.out"]]
        for i in range(bert.config.num_hidden_layers):
            wanted.append(exact.layer(i, wanted[-1], mask)[layer_name(i, "resid_post")])
            ops.append(plain.layer(i, ops[-1], mask)[layer_name(i, "resid_post")])
    real = mask.bool()
    baselines = [Baseline.of(case.dtype, h, o, want, real) for h, o, want in zip(hf_states, ops, wanted)]
    return wanted, baselines


def _between_model_outputs(bert: Bert, case: Case, hf, inputs) -> Tolerance | list[Tolerance]:
    """As `_between_outputs`, per hidden state: the table's, or in half precision twice each one's allowance."""
    if not is_half(case.dtype):
        return tolerances_for(case.dtype).values
    return [b.tolerance(sides=2) for b in _model_baselines(bert, case, hf, inputs)[1]]


def _model_equivalence_half(check: Check, bert: Bert, case: Case, hf, inputs, out) -> float:
    """`model_equivalence` in half precision: every hidden state as close to the float64 reference as plain
    PyTorch's chained in that dtype; each named intermediate of layer i as close to the float64 reference
    layer fed the candidate's own hidden state i as HF's layer and the reference's ops fed the same."""
    __tracebackhide__ = True
    wanted, baselines = _model_baselines(bert, case, hf, inputs)
    mask, real = inputs["attention_mask"], inputs["attention_mask"].bool()
    worst = 0.0
    for i, (want, b) in enumerate(zip(wanted, baselines)):
        worst = max(worst, check.close(_where(f"hidden_states.{i}"), _state_name(i), out[f"hidden_states.{i}"], want,
                                       b.tolerance(), f"hidden state {i} == the float64 reference, {b.says()}"))  # fmt: skip
    exact = ReferenceBert.from_hf(hf, dtype=torch.float64, lazy=True)
    plain = ReferenceBert.from_hf(hf)
    layers = sorted({int(name.split(".")[1]) for name in out if name.startswith("blocks.")})
    for i in ([-1] if any(n.startswith("embed.") for n in out) else []) + layers:
        with torch.no_grad():
            if i < 0:
                ids, types = inputs["input_ids"], inputs["token_type_ids"]
                names, want, ops, theirs = [n for n in out if n.startswith("embed.")], exact.embed(ids, types), plain.embed(ids, types), {}
            else:
                state = out[f"hidden_states.{i}"]
                names = [n for n in out if n.startswith(f"blocks.{i}.")]
                want, ops = exact.layer(i, state.double(), mask), plain.layer(i, state, mask)
                theirs = capture_layer(hf.encoder.layer[i], state, mask, i)
        for name in names:
            actual, w, o, h = out[name], want[name], ops[name], theirs.get(name)
            if name.endswith((".attn_scores", ".pattern")):
                actual, w, o = (_scores_on_kept_keys(t, mask) for t in (actual, w, o))
            b = Baseline.of(case.dtype, h, o, w, real)
            worst = max(worst, check.close(_where(name), name, actual, w, b.tolerance(),
                                           f"{name} == the float64 reference fed the candidate's own layer input, {b.says()}"))  # fmt: skip
    return worst


def model_equivalence(cand: ModelCandidate, bert: Bert, case: Case) -> float:
    """Embeddings and every hidden state equal HF's; each named intermediate of layer i equals the
    reference layer i fed the candidate's own hidden state i (so a layer's error is its own, not the
    sum of the layers before it: chained, pre-LayerNorm sums of ~50 carry more than the tolerance)."""
    __tracebackhide__ = True
    check, hf, fn, inputs = _start_model(cand, bert, case, "model-equivalence", "model equivalence with HF")
    out = _model_output(check, cand, fn, inputs, bert, case.dtype)
    if is_half(case.dtype):
        return _model_equivalence_half(check, bert, case, hf, inputs, out)
    with torch.no_grad():
        hf_states = hf(**inputs, output_hidden_states=True, return_dict=True).hidden_states
    tol = tolerances_for(case.dtype).values
    mask = inputs["attention_mask"]
    reference = bert.reference(case.dtype, case.device)
    worst = 0.0

    def compare(name: str, wanted: torch.Tensor, shown: str, what: str) -> float:
        __tracebackhide__ = True
        actual = out[name]
        if name.endswith((".attn_scores", ".pattern")):
            actual, wanted = _scores_on_kept_keys(actual, mask), _scores_on_kept_keys(wanted, mask)
        return check.close(_where(name), shown, actual, wanted, tol, f"{shown} == {what}")

    for i in range(bert.config.num_hidden_layers + 1):
        worst = max(worst, compare(f"hidden_states.{i}", hf_states[i], _state_name(i), "HF"))
    own = "the reference fed the candidate's own layer input"
    with torch.no_grad():
        if any(name.startswith("embed.") for name in out):
            embedded = reference.embed(inputs["input_ids"], inputs["token_type_ids"])
            for name in [n for n in out if n.startswith("embed.")]:
                worst = max(worst, compare(name, embedded[name], name, own))
        # One reference layer at a time, each dropped once compared: not every activation of every layer at once.
        for i in sorted({int(name.split(".")[1]) for name in out if name.startswith("blocks.")}):
            expected = reference.layer(i, out[f"hidden_states.{i}"], mask)
            for name in [n for n in out if n.startswith(f"blocks.{i}.")]:
                worst = max(worst, compare(name, expected[name], name, own))
    return worst


def model_batching(cand: ModelCandidate, bert: Bert, case: Case) -> float:
    """Each text run alone, unpadded, gives the hidden states it has in the padded batch."""
    __tracebackhide__ = True
    check, hf, fn, inputs = _start_model(cand, bert, case, "model-batching", "batch and padding-length invariance")
    out = _model_output(check, cand, fn, inputs, bert, case.dtype, states_only=True)
    tol = _between_model_outputs(bert, case, hf, inputs)
    worst = 0.0
    for b in range(case.batch):
        n = int(inputs["attention_mask"][b].sum())
        if case.batch == 1 and n == inputs["input_ids"].shape[1]:
            continue  # alone is the batch itself: a call compared with itself is the determinism property
        row = {k: v[b : b + 1, :n] for k, v in inputs.items()}
        alone = _model_output(check, cand, fn, row, bert, case.dtype, states_only=True)
        in_batch = {k: v[b : b + 1, :n] for k, v in out.items()}
        worst = max(worst, _states_close(check, bert, in_batch, alone, tol,
                                         f"text {b} in the batch == text {b} alone", tokens=False))  # fmt: skip
    return worst


def model_padding(cand: ModelCandidate, bert: Bert, case: Case) -> float:
    """Five more padding tokens on every row leave every real token's hidden states unchanged."""
    __tracebackhide__ = True
    check, hf, fn, inputs = _start_model(cand, bert, case, "model-padding", "extra padding is ignored")
    if inputs["input_ids"].shape[1] + 5 > bert.max_length:
        return 0.0  # no room for more padding: the other 9 in 10 examples cover it
    out = _model_output(check, cand, fn, inputs, bert, case.dtype, states_only=True)
    pad = bert.tokenizer.pad_token_id or 0
    padded = {k: torch.nn.functional.pad(v, (0, 5), value=pad if k == "input_ids" else 0) for k, v in inputs.items()}
    more = _model_output(check, cand, fn, padded, bert, case.dtype, states_only=True)
    T = inputs["input_ids"].shape[1]
    return _states_close(check, bert, {k: v[:, :T] for k, v in more.items()}, out, _between_model_outputs(bert, case, hf, inputs),
                         "real tokens unchanged by 5 more padding tokens")  # fmt: skip


def model_determinism(cand: ModelCandidate, bert: Bert, case: Case) -> float:
    """The same input twice gives bit for bit the same hidden states."""
    __tracebackhide__ = True
    check, _, fn, inputs = _start_model(cand, bert, case, "model-determinism", "determinism")
    first = _model_output(check, cand, fn, inputs, bert, case.dtype)
    second = _model_output(check, cand, fn, {k: v.clone() for k, v in inputs.items()}, bert, case.dtype)
    return _states_close(check, bert, second, first, EXACT, "a second call == the first, bit for bit")


MODEL_CANDIDATE_PROPERTIES = {
    "model-equivalence": model_equivalence,
    "model-batching": model_batching,
    "model-padding": model_padding,
    "model-determinism": model_determinism,
}
