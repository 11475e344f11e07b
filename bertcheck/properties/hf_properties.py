"""Properties only HF's own model can be asked, each through forwards of its own: what a reimplementation's
function has no counterpart for. The attention pattern (eager attention's probabilities), every attention
implementation, dropout in train mode, copies in other dtypes and devices against the float64 reference,
a fully padded row, the pooler, and gradients. (The forms of the call itself, omitted arguments and output
options among them, are `bertcheck.properties.input_forms`.)

Each runs the forwards it needs on one generated case (keep those cases small: batch <= 4) and
compares every hidden state at real-token positions, so a failure names the first layer that differs.
(What any candidate can be asked, HF's model included, is in `bertcheck.properties.model_properties`.)
"""

from __future__ import annotations

import math
from contextlib import contextmanager

import torch

from bertcheck.subjects._compat import attention_implementations
from bertcheck.subjects.capture import capture
from bertcheck.spec.compare import largest_abs
from bertcheck.inputs.cases import Case
from bertcheck.properties.failures import Judge, Unavailable, full_name, where_of
from bertcheck.spec.family import layer_of, module_path, types_given
from bertcheck.spec.names import RESIDUAL_ADDS, layer_name
from bertcheck.properties.outputs import outputs_close
from bertcheck.spec.names import state_index, state_name
from bertcheck.subjects.subject import Bert
from bertcheck.spec.tolerances import EXACT, Tolerance, chained, tolerances_for


def _states(model, **inputs) -> tuple[torch.Tensor, ...]:
    with torch.no_grad():
        return model(**inputs, output_hidden_states=True, return_dict=True).hidden_states


def _same_states(judge: Judge, actual, expected, tolerance, expectation: str, tokens=True) -> float:
    """Every hidden state alike at real tokens (`tokens` as for `Judge.close`); a failure names the
    first layer that differs."""
    __tracebackhide__ = True
    named = [{state_name(i): s for i, s in enumerate(states)} for states in (actual, expected)]
    return outputs_close(judge, *named, tolerance, expectation, tokens=tokens, suffix=state_index)


def _start(bert: Bert, case: Case, key: str, title: str):
    inputs = bert.encode(case)
    judge = Judge(key, title, case, bert.model_name, inputs["attention_mask"].bool(), ids=inputs["input_ids"])
    return judge, inputs, bert.model(case.dtype, case.device)


# ---- attention ----------------------------------------------------------------------------------


def attention_pattern(bert: Bert, case: Case) -> float:
    """Each query's attention over keys sums to 1, padded keys get exactly 0, and HF's pattern equals
    the reference's (layer i fed hidden_states[i]). Read from eager attention: the only
    implementation that returns its probabilities."""
    __tracebackhide__ = True
    judge, inputs, _ = _start(bert, case, "attention-pattern", "attention pattern")
    tol = tolerances_for(case.dtype).values
    with torch.no_grad(), bert.attention("eager", case.dtype, case.device) as eager:
        out = eager(**inputs, output_attentions=True, output_hidden_states=True, return_dict=True)
    ref = bert.reference(case.dtype, case.device)
    mask = inputs["attention_mask"]
    worst = 0.0
    for i, pattern in enumerate(out.attentions):  # (B, nh, T, T)
        name, where = layer_name(i, "pattern"), where_of(i)
        by_query = pattern.transpose(1, 2)  # (B, T, nh, T): real query rows are compared, index (b, query, head, key)
        sums = by_query.sum(dim=-1)
        worst = max(
            worst,
            judge.close(where, name, sums, torch.ones_like(sums), tol, "each query's pattern sums to 1 over keys"),
        )
        padded_keys = by_query * (1 - mask)[:, None, None, :].to(pattern.dtype)
        judge.close(
            where, name, padded_keys, torch.zeros_like(padded_keys), EXACT, "padded keys get exactly 0 probability"
        )
        with torch.no_grad():
            expected = ref.layer(i, out.hidden_states[i], mask)[name].transpose(1, 2)
        worst = max(worst, judge.close(where, name, by_query, expected, tol, f"pattern == reference layer {i} pattern"))
    return worst


def eager_matches_sdpa(bert: Bert, case: Case) -> float:
    """Every attention implementation gives the same hidden states, on every real row."""
    __tracebackhide__ = True
    implementations = attention_implementations(bert.config)
    if len(implementations) < 2:
        import transformers

        raise Unavailable(
            f"transformers {transformers.__version__} has only {implementations[0]} attention for "
            f"{bert.member.model_class}"
        )
    judge, inputs, _ = _start(bert, case, "eager-sdpa", "attention implementations agree")
    tol = chained(case.dtype)  # each implementation's states chained through every layer
    with bert.attention("eager", case.dtype, case.device) as eager:
        expected = _states(eager, **inputs)
    worst = 0.0
    for other in implementations[1:]:
        with bert.attention(other, case.dtype, case.device) as model:
            actual = _states(model, **inputs)
        worst = max(worst, _same_states(judge, actual, expected, tol, f"{other} == eager"))
    return worst


# ---- dropout --------------------------------------------------------------------


def dropout_placement(bert: Bert, case: Case) -> float:
    """In train mode dropout hits each sublayer's output before the residual add, never the residual
    stream: elementwise `ln1_in` is `resid_pre` (dropped) or `resid_pre + attn_out / (1 - p)` (kept),
    exactly, likewise `ln2_in` with `mlp_out` and `resid_mid`; about p of the elements are dropped; and
    with p = 0, train mode gives the eval output."""
    __tracebackhide__ = True
    judge, inputs, model = _start(bert, case, "dropout", "dropout placement")
    p = bert.config.hidden_dropout_prob
    scale = 1.0 / (1.0 - p)  # what torch multiplies kept elements by (not a division: 1 ulp apart)
    with _train_mode(model):
        torch.manual_seed(0)
        acts = capture(model, **inputs)
    judge.acts = acts
    real = judge.real
    dropped_total, count = 0, 0
    undropped = bert.member.undropped  # DistilBERT adds its attention output as it is, in train mode too
    for i in range(bert.config.num_hidden_layers):
        for add in RESIDUAL_ADDS:
            where, name = where_of(i), layer_name(i, add.total)
            total = judge.get(where, name)
            sub, resid = judge.get(where, layer_name(i, add.sublayer)), judge.get(where, layer_name(i, add.residual))
            if add.sublayer in undropped:
                judge.close(
                    where, name, total, resid + sub, EXACT, f"{add.total} == {add.residual} + {add.sublayer}, undropped"
                )
                continue
            kept, dropped = total == resid + sub * scale, total == resid
            neither = ~(kept | dropped)
            # Reported as the distance from the kept value: exactly 0 wherever the placement is right.
            misplaced = torch.where(neither, total - (resid + sub * scale), torch.zeros_like(total))
            judge.close(
                where,
                name,
                misplaced,
                torch.zeros_like(misplaced),
                EXACT,
                f"{add.total} == {add.residual} + dropout({add.sublayer}), dropout scaling kept elements by 1/(1-p)",
            )
            dropped_total += int((dropped & ~kept)[real].sum())
            count += int(real.sum()) * total.shape[-1]
    # Dropped elements are Binomial(count, p): 6 standard deviations is a false alarm once in ~1e9 runs.
    sigma = (p * (1 - p) / count) ** 0.5
    fraction = dropped_total / count
    if abs(fraction - p) > 6 * sigma + 1e-12:
        raise judge.fail(
            "every layer",
            "ln1_in, ln2_in",
            f"about p = {p} of the sublayer outputs dropped",
            [f"dropped {fraction:.4f} of {count} elements (6 sigma = {6 * sigma:.4f})"],
        )
    evaluated = _states(model, **inputs)
    with _train_mode(bert.without_dropout(case.dtype, case.device)) as undropped:
        trained = _states(undropped, **inputs)
    return _same_states(judge, trained, evaluated, chained(case.dtype), "train mode with p = 0 == eval")


@contextmanager
def _train_mode(model):
    """The shared model in train mode for the block, then back in eval mode: no per-example copy of the
    weights (~0.3 s for bert-base)."""
    model.train()
    try:
        yield model
    finally:
        model.eval()


# ---- precision, devices and forward options -----------------------------------------------------


def reference_agreement(bert: Bert, case: Case) -> float:
    """In any dtype on any device, every hidden state is finite at real tokens and agrees, layer by
    layer, with the float64 reference on the CPU fed the same (upcast) hidden state."""
    __tracebackhide__ = True
    judge, inputs, model = _start(bert, case, "precision", "agreement with the float64 CPU reference")
    tol = tolerances_for(case.dtype).values
    states = _states(model, **inputs)
    ref = bert.reference(torch.float64, "cpu")
    cpu = {key: value.cpu() for key, value in inputs.items()}
    real = judge.real
    for i, state in enumerate(states):
        layer = None if i == 0 else i - 1
        bad = ~torch.isfinite(state[real])
        if bool(bad.any()):
            name = full_name(layer, "embed.out" if layer is None else "resid_post")
            raise judge.fail(
                where_of(layer),
                name,
                "finite at every real token",
                [f"{int(bad.sum())} NaN or infinite values in hidden_states[{i}]"],
            )
    with torch.no_grad():
        expected = [ref.embed(cpu["input_ids"], cpu.get("token_type_ids"))["embed.out"]]
        expected += [
            ref.layer(i, states[i].cpu().double(), cpu["attention_mask"])[layer_name(i, "resid_post")]
            for i in range(bert.config.num_hidden_layers)
        ]
    return _same_states(
        judge,
        states,
        expected,
        tol,
        f"{str(case.dtype).removeprefix('torch.')} on {case.device} == float64 reference fed the same input",
    )


def fully_padded_row(bert: Bert, case: Case) -> float:
    """Policy for a row that is all padding (attention_mask all 0): its outputs are finite, and every
    other row is exactly what it is without that row. (HF attends uniformly within such a row.)"""
    __tracebackhide__ = True
    judge, inputs, model = _start(bert, case, "padded-row", "a fully padded row")
    tol = chained(case.dtype)  # the rows' states with and without the blank row, each chained
    expected = _states(model, **inputs)
    # The blank row gets its own (random) ids: a copy of a real row would hide bugs that mix rows.
    ids = inputs["input_ids"]
    noise = torch.randint(
        1000, bert.config.vocab_size, (1, ids.shape[1]), generator=torch.Generator().manual_seed(0), device="cpu"
    )
    row = {
        "input_ids": noise.to(ids.device),
        "attention_mask": torch.zeros_like(ids[:1]),
        "token_type_ids": torch.zeros_like(ids[:1]),
    }
    blank = {key: torch.cat([value, row[key]]) for key, value in inputs.items()}  # the keys the model takes
    states = _states(model, **blank)
    for i, state in enumerate(states):
        if not bool(torch.isfinite(state[-1]).all()):
            layer = None if i == 0 else i - 1
            raise judge.fail(
                where_of(layer),
                full_name(layer, "embed.out" if layer is None else "resid_post"),
                "the fully padded row stays finite",
                [f"NaN or infinite values in hidden_states[{i}] of that row"],
            )
    return _same_states(judge, [s[:-1] for s in states], expected, tol, "other rows unchanged by a fully padded row")


# ---- the pooler ---------------------------------------------------------------------------------


def pooler(bert: Bert, case: Case) -> float:
    """BertPooler: the first token's last hidden state through dense (``pooler.pre``, read by a hook) and
    tanh (``pooler.out``, HF's pooler_output), each equal to the reference pooler fed HF's own last hidden
    state."""
    __tracebackhide__ = True
    judge, inputs, model = _start(bert, case, "pooler", "the pooler")
    if bert.lacks_pooler:
        raise Unavailable(bert.lacks_pooler)
    captured = {}
    dense = model.get_submodule(module_path(bert.config, None, "pooler.dense"))  # ALBERT's: `pooler`
    hook = dense.register_forward_hook(lambda module, args, out: captured.setdefault("pooler.pre", out))
    try:
        with torch.no_grad():
            out = model(**inputs, return_dict=True)
    finally:
        hook.remove()
    theirs = {"pooler.pre": captured["pooler.pre"], "pooler.out": out.pooler_output}
    ours = bert.reference(case.dtype, case.device).pool(out.last_hidden_state)
    tol = tolerances_for(case.dtype).values
    return outputs_close(judge, theirs, ours, tol, "the reference pooler fed HF's own last hidden state")


# ---- gradients ----------------------------------------------------------------------------------


def gradients(bert: Bert, case: Case) -> float:
    """The reference's backward matches HF's: d loss / d inputs_embeds and every parameter gradient,
    for loss = sum(last_hidden_state * R) over real tokens with a fixed random R."""
    __tracebackhide__ = True
    judge, inputs, model = _start(bert, case, "gradients", "gradients")
    if tolerances_for(case.dtype).grads is None:
        raise Unavailable(f"gradient tolerances are not measured for {case.dtype}: use float32 or float64")
    try:
        return _gradients(bert, judge, case, inputs, model)
    finally:
        model.zero_grad(set_to_none=True)  # the shared model's .grad fields were written: leave none behind


def _loss_inputs(bert: Bert, case: Case, inputs, hf):
    """The word embeddings of the ids (without grad), and the fixed random weights R of the loss,
    zero at padded tokens."""
    ids, mask = inputs["input_ids"], inputs["attention_mask"]
    with torch.no_grad():
        words = hf.embeddings.word_embeddings(ids)
    weights = torch.randn(
        *ids.shape,
        bert.config.hidden_size,
        generator=torch.Generator().manual_seed(0),
        dtype=torch.float64,
        device="cpu",
    )
    return words, (weights.to(case.dtype).to(ids.device)) * mask[..., None].to(case.dtype)  # real tokens only


def _reference_loss(bert: Bert, ref, inputs, words, weights) -> tuple[torch.Tensor, torch.Tensor]:
    embeds = words.clone().requires_grad_(True)
    hidden = ref.embed(inputs["input_ids"], inputs.get("token_type_ids"), inputs_embeds=embeds)["embed.out"]
    for i in range(bert.config.num_hidden_layers):
        hidden = ref.layer(i, hidden, inputs["attention_mask"])[layer_name(i, "resid_post")]
    return (hidden * weights).sum(), embeds


def _hf_loss(hf, inputs, words, weights) -> tuple[torch.Tensor, torch.Tensor]:
    embeds = words.clone().requires_grad_(True)
    out = hf(
        inputs_embeds=embeds,
        attention_mask=inputs["attention_mask"],
        **types_given(inputs.get("token_type_ids")),
        return_dict=True,
    ).last_hidden_state
    return (out * weights).sum(), embeds


class _ReferenceAlongside:
    """The reference's forward run in step with HF's: right after HF's embeddings and after each HF
    layer (forward hooks), the reference computes its next stage on its own chain. The autograd graph
    then interleaves the two models layer by layer, so one backward reaches both gradients of a layer's
    weights at about the same time. The hooks only pace the reference: it always runs its embeddings and
    every layer in order, on its own hidden state, whatever HF's forward calls or skips."""

    def __init__(self, bert: Bert, hf, ref, inputs, embeds: torch.Tensor):
        self.bert, self.ref, self.inputs, self.embeds = bert, ref, inputs, embeds
        self.hidden: torch.Tensor | None = None
        self.done = 0  # reference layers run
        self._handles = [hf.embeddings.register_forward_hook(lambda *_: self._embed())]
        # Each layer module once: ALBERT's shared one runs, and paces the reference, once per use.
        layers = {id(m): m for m in (layer_of(hf, i) for i in range(bert.config.num_hidden_layers))}.values()
        self._handles += [layer.register_forward_hook(lambda *_: self._next_layer()) for layer in layers]

    def _embed(self) -> None:
        if self.hidden is None:
            self.hidden = self.ref.embed(
                self.inputs["input_ids"], self.inputs.get("token_type_ids"), inputs_embeds=self.embeds
            )["embed.out"]

    def _next_layer(self) -> None:
        self._embed()
        if self.done < self.bert.config.num_hidden_layers:
            self.hidden = self.ref.layer(self.done, self.hidden, self.inputs["attention_mask"])[
                layer_name(self.done, "resid_post")
            ]
            self.done += 1

    def finish(self) -> torch.Tensor:
        """Stop following HF; run whatever stages HF's forward did not pace; the reference's last hidden state."""
        for handle in self._handles:
            handle.remove()
        self._embed()
        while self.done < self.bert.config.num_hidden_layers:
            self._next_layer()
        return self.hidden


class _GradientPairs:
    """Each weight's two leaves, HF's Parameter and the reference's alias of it: the moment a backward
    has filled both `.grad` fields (post-accumulate hooks), keep max |g_hf| and max |g_hf - g_ref| and
    free both. At most a few layers' gradients are alive at once, not a model's worth."""

    def __init__(self, pairs: dict[str, tuple[torch.Tensor, torch.Tensor]]):
        self.pairs = pairs
        self.largest = 0.0  # max |g_hf| over every weight
        self.apart: dict[str, float] = {}  # weight -> max |g_hf - g_ref|
        self._handles = [
            leaf.register_post_accumulate_grad_hook(lambda _, key=key: self._judge(key))
            for key, both in pairs.items()
            for leaf in both
            if leaf.requires_grad
        ]

    def _judge(self, key: str) -> None:
        ours, theirs = self.pairs[key]
        if ours.grad is None or theirs.grad is None:
            return  # the other side's gradient is still to come
        self.largest = max(self.largest, largest_abs(ours.grad))
        self.apart[key] = largest_abs(ours.grad.sub_(theirs.grad))  # in place: freed next line anyway
        ours.grad = theirs.grad = None

    def finish(self) -> None:
        """Remove the hooks; a weight only one side read (a gradient on one side, none on the other)
        is judged against 0."""
        for handle in self._handles:
            handle.remove()
        for key, (ours, theirs) in self.pairs.items():
            if (ours.grad is None) != (theirs.grad is None):
                self.largest = max(self.largest, largest_abs(ours.grad) if ours.grad is not None else 0.0)
                self.apart[key] = largest_abs(ours.grad if ours.grad is not None else theirs.grad)
            ours.grad = theirs.grad = None


def _gradients(bert: Bert, judge: Judge, case: Case, inputs, hf) -> float:
    """Both backwards in one pass, over one copy of the weights: the reference reads HF's storage
    through aliases with their own `.grad` (`ReferenceBert.aliasing`), runs in step with HF's forward
    (`_ReferenceAlongside`), and each weight's two gradients are reduced to two numbers and freed as
    soon as both exist (`_GradientPairs`). Holding both models' gradients had cost 1.4 GB for float64
    bert-base; one set, 0.7 GB. The input gradients are separate leaves, compared directly. Only when
    something is over the tolerance does `_gradients_apart` recompute both sides apart, for a report
    that shows each value."""
    __tracebackhide__ = True
    from bertcheck.spec.reference import ReferenceBert

    words, weights = _loss_inputs(bert, case, inputs, hf)
    ref = ReferenceBert.aliasing(hf)
    params = dict(hf.named_parameters())
    # One pair per weight of the model: ALBERT's shared weights are one leaf on each side, read by every
    # layer of their group, so each gradient is the sum over those uses on both sides.
    pairs = _GradientPairs({key: (params[key], ref.w[first]) for key, first in ref.sources().items()})
    ref_embeds = words.clone().requires_grad_(True)
    try:
        alongside = _ReferenceAlongside(bert, hf, ref, inputs, ref_embeds)
        try:
            loss, hf_embeds = _hf_loss(hf, inputs, words, weights)
        finally:
            ref_out = alongside.finish()
        (loss + (ref_out * weights).sum()).backward()
    finally:
        pairs.finish()
    # The tolerance is a share of the largest |gradient|, HF's (the reference's agrees to within it).
    scale = max(pairs.largest, largest_abs(hf_embeds.grad))
    limit = tolerances_for(case.dtype).grads * scale
    diffs = [largest_abs(hf_embeds.grad - ref_embeds.grad), *pairs.apart.values()]
    worst = float("nan") if any(math.isnan(d) for d in diffs) else max(diffs)
    if worst <= limit:  # NaN compares false: it takes the detailed path
        return worst / limit if limit else 0.0
    # The first gradient over the tolerance, in the report's order: the input, then each weight.
    order = [("inputs_embeds", diffs[0])] + [(k, pairs.apart.get(k, 0.0)) for k in ref.sources() if k != _WORDS]
    failing = next((k for k, d in order if math.isnan(d) or d > limit), "inputs_embeds")
    return _gradients_apart(bert, judge, case, inputs, hf, failing, scale)


_WORDS = "embeddings.word_embeddings.weight"  # fed as inputs_embeds: its gradient is the input's


def _gradients_apart(bert: Bert, judge: Judge, case: Case, inputs, hf, key: str, scale: float) -> float:
    """The report of a failure: the two gradients of `key` ("inputs_embeds", or the weight `_gradients`
    found first over the tolerance), recomputed apart and compared element by element. Every other
    gradient is dropped the moment a backward accumulates it: the report costs one model's memory,
    not two sets of gradients (a float64 bert-base failure held 2.9 GiB with both sets)."""
    __tracebackhide__ = True
    from bertcheck.spec.reference import ReferenceBert

    words, weights = _loss_inputs(bert, case, inputs, hf)
    ref = ReferenceBert.aliasing(hf)  # its own leaves over HF's storage: both sides' gradients, held apart
    params = dict(hf.named_parameters())
    first = ref.sources().get(key, key)  # BERT's name of the model's weight `key`: its (first) layer
    kept = () if key == "inputs_embeds" else (params[key], ref.w[first])
    leaves = [leaf for leaf in (*params.values(), *ref.w.values()) if leaf.requires_grad]
    handles = [
        leaf.register_post_accumulate_grad_hook(lambda leaf: setattr(leaf, "grad", None))
        for leaf in leaves
        if not any(leaf is k for k in kept)
    ]
    try:
        loss, hf_embeds = _hf_loss(hf, inputs, words, weights)
        loss.backward()
        ref_loss, ref_embeds = _reference_loss(bert, ref, inputs, words, weights)
        ref_loss.backward()
    finally:
        for handle in handles:
            handle.remove()
    if key == "inputs_embeds":  # every element: padded rows get 0 on both sides
        where, actual, expected = "embeddings", hf_embeds.grad, ref_embeds.grad
    else:
        # A weight the forward never read (absolute positions under relative scores) has no gradient: 0.
        actual, expected = (
            torch.zeros_like(ref.w[first]) if g is None else g for g in (params[key].grad, ref.w[first].grad)
        )
        where = where_of(int(first.split(".")[2]) if first.startswith("encoder.layer.") else None)
    within = Tolerance(rtol=0.0, atol=tolerances_for(case.dtype).grads * scale)
    return judge.close(
        where,
        key,
        actual,
        expected,
        within,
        tokens=False,
        expectation=f"d loss / d {key} == reference (tolerance scaled by HF's largest gradient, {scale:.3g})",
    )
