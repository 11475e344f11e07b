"""The properties of a whole model, each written once and run against a model candidate: HF's own model
(`HF_MODEL`), bertcheck's reference model, or a user's factory, fed generated sentences (`Case`).

A model's outputs are its hidden states by vocabulary name (``embed.out``, then each layer's
``blocks.{i}.resid_post``) and any named intermediates it gives. Each property returns its worst error
as a share of the tolerance (1.0 the limit) and raises `PropertyFailure` naming the layer and
activation.
"""

from __future__ import annotations

import torch

from bertcheck.spec import deviations
from bertcheck.properties import metamorphic
from bertcheck.subjects.candidate import ModelCandidate
from bertcheck.subjects.capture import capture_layer
from bertcheck.inputs.cases import Case
from bertcheck.properties.failures import Judge, PropertyFailure, Unavailable
from bertcheck.spec.low_precision import K_CHAINED, Yardstick, is_half
from bertcheck.spec.family import embed_names, hf_embeddings, hf_pooler, layer_of
from bertcheck.spec.names import LAYER_NAMES, layer_name
from bertcheck.properties.outputs import comparable, require_finite
from bertcheck.spec.names import state_index, state_name
from bertcheck.spec.reference import ReferenceBert
from bertcheck.subjects.subject import Bert
from bertcheck.spec.tolerances import EXACT, Tolerance, chained, tolerances_for


class ModelRun:
    """One model property on one example: the candidate built over the model under test, the encoded
    input, and the `Judge` that names failures (with the candidate, unless it is HF's own)."""

    def __init__(self, cand: ModelCandidate, bert: Bert, case: Case, key: str, title: str):
        self.cand, self.bert, self.case, self.config = cand, bert, case, bert.config
        self.inputs = bert.encode(case)
        self.mask = self.inputs["attention_mask"]
        self.judge = Judge(key, title, cand.wrap(case), bert.model_name, self.mask.bool(), ids=self.inputs["input_ids"])
        cand.follow(bert)
        key = (bert.model_name, case.dtype, str(case.device))
        if cand.takes_a_copy and bert.converts_in_place(case.dtype, case.device):
            # The factory's copy made from the model as loaded, which stays so: not the model converted
            # in place beside a copy of it (`Bert.private_copy`). Nothing here reads the model itself
            # in this dtype: the reference reads it converting as it runs.
            self.hf = None
            self.fn = cand.build(None, key=key, copy=lambda: bert.private_copy(case.dtype, case.device))
        else:
            self.hf = bert.model(case.dtype, case.device)
            self.fn = cand.build(self.hf, key=key, repair=bert.reload)
        self.n_layers = bert.config.num_hidden_layers

    def __call__(self, inputs: dict | None = None, *, states_only: bool = False) -> dict[str, torch.Tensor]:
        """The candidate's outputs, each validated and finite, by vocabulary name: the hidden states it gave
        (all, some, or the last alone), its pooler output (``pooler.out``), then (unless `states_only`: what
        the metamorphic properties compare, at 512 tokens in float64 a layer's intermediates are ~10 MB each)
        the named intermediates it gave. An output given twice (``embed.out`` by name and in
        hidden_states; last_hidden_state and hidden_states) must be the same, bit for bit."""
        __tracebackhide__ = True
        inputs = self.inputs if inputs is None else inputs
        given = self.cand.call(self.fn, inputs, self.config, self.case.dtype)
        out = {
            state_name(i): given[f"hidden_states.{i}"]
            for i in range(self.n_layers + 1)
            if f"hidden_states.{i}" in given
        }
        last = state_name(self.n_layers)
        for name, value in given.items():
            if name.startswith("hidden_states."):
                continue
            if name == "last_hidden_state" or name in out:
                same = last if name == "last_hidden_state" else name
                self.judge.close(
                    "the model output",
                    same,
                    value,
                    out[same],
                    EXACT,
                    f"{name} given twice, the same both times ({state_index(same)})",
                    tokens=False,
                )
            elif name.startswith("pooler.") or not states_only:
                out[name] = value
        for name, value in out.items():
            require_finite(self.judge, name, value, inputs["attention_mask"])
        return out

    def own_model(self) -> torch.nn.Module:
        """HF's model in the example's dtype: its own error there is what an end-to-end output is held to."""
        return self.hf if self.hf is not None else self.bert.model(self.case.dtype, self.case.device)

    def given_states(self, out: dict) -> list[int]:
        """Which hidden states (0 the embeddings' output, i + 1 layer i's) the candidate gave."""
        return [i for i in range(self.n_layers + 1) if state_name(i) in out]

    def _references(self):
        """The reference over the model's weights in its dtype; in half precision also the float64 one
        over the same (half) weights, upcast as read."""
        if not is_half(self.case.dtype):
            return self.bert.reference(self.case.dtype, self.case.device), None
        return ReferenceBert.from_hf(self.hf), ReferenceBert.from_hf(self.hf, dtype=torch.float64, lazy=True)

    def expected(self, stage: int, given: torch.Tensor | None, refs, names) -> tuple[dict, dict, dict]:
        """What the spec says stage `stage` gives (-1 the embeddings of the ids, i a layer fed `given`, the
        candidate's own hidden state i): the activations `names` (full names), each one's tolerance, and what
        that tolerance is (as `LayerRun.expected`: the table's, or in half precision twice plain
        PyTorch's error in that dtype)."""
        plain, exact = refs
        ids, types, mask = self.inputs["input_ids"], self.inputs.get("token_type_ids"), self.mask
        with torch.no_grad():
            ops = _run_stage(plain, stage, given, ids, types, mask, names)
            ops = {name: value for name, value in ops.items() if name in names}  # only these are kept
            if exact is None:
                ops = {name: comparable(name, value, mask) for name, value in ops.items()}
                tol = tolerances_for(self.case.dtype).values
                return ops, dict.fromkeys(ops, tol), dict.fromkeys(ops, "the reference")
            if stage == -1:
                wanted = exact.embed(ids, types)
                theirs = {"embed.out": hf_embeddings(self.hf)(input_ids=ids, token_type_ids=types)}
            elif stage == POOLER:
                wanted = exact.pool(given.double())
                pooler = hf_pooler(self.hf)
                theirs = {"pooler.out": pooler(given)} if pooler is not None else {}
            else:
                wanted = exact.layer_keeping(stage, given.double(), mask, names)
                theirs = {
                    name.replace("blocks.0.", f"blocks.{stage}.", 1): value
                    for name, value in capture_layer(layer_of(self.hf, stage), given, mask, 0, self.hf.config).items()
                }
        real = mask.bool()
        wanted = {name: comparable(name, value, mask) for name, value in wanted.items() if name in names}
        yardsticks = {
            name: Yardstick.of(self.case.dtype, theirs.get(name), comparable(name, ops[name], mask), want, real)
            for name, want in wanted.items()
        }
        return (
            wanted,
            {name: b.tolerance() for name, b in yardsticks.items()},
            {name: f"the float64 reference, {b.says()}" for name, b in yardsticks.items()},
        )

    def between(self) -> Tolerance | dict[str, Tolerance]:
        """How far two of the candidate's outputs may be apart: the table's tolerance in float32 and
        float64, its atol growing with the states compared in float32 (`CHAINED_SCALE`: each went through
        every layer); in half precision, per hidden state, twice what each may be off the float64
        reference when the whole model runs chained in that dtype (HF's model and the reference's ops)."""
        if not is_half(self.case.dtype):
            return chained(self.case.dtype)
        plain, exact = self._references()
        ids, types, mask = self.inputs["input_ids"], self.inputs.get("token_type_ids"), self.mask
        with torch.no_grad():
            out = self.hf(**self.inputs, output_hidden_states=True, return_dict=True)
            theirs = out.hidden_states
            wanted, ops = [exact.embed(ids, types)["embed.out"]], [plain.embed(ids, types)["embed.out"]]
            for i in range(self.n_layers):
                wanted.append(exact.layer(i, wanted[-1], mask)[layer_name(i, "resid_post")])
                ops.append(plain.layer(i, ops[-1], mask)[layer_name(i, "resid_post")])
            pooled = out.pooler_output if exact.has_pooler else None  # the same forward's: not a second one
        real = mask.bool()
        tols = {
            state_name(i): Yardstick.of(self.case.dtype, h, o, w, real).tolerance(sides=2)
            for i, (h, o, w) in enumerate(zip(theirs, ops, wanted))
        }
        if pooled is not None:
            pool = (pooled, plain.pool(ops[-1])["pooler.out"], exact.pool(wanted[-1])["pooler.out"])
            tols["pooler.out"] = Yardstick.of(self.case.dtype, *pool, real).tolerance(sides=2)
        return tols

    def subject(self) -> metamorphic.Subject:
        """This candidate as the metamorphic properties run it: on {input_ids, attention_mask,
        token_type_ids}, its hidden states compared."""
        config = self.config

        def scribble(inputs, where):
            # Other ids and token types there, seeded on the CPU (the same on every device).
            gen = torch.Generator().manual_seed(0)
            low = 1000 if config.vocab_size > 2000 else 0  # clear of the special tokens in a real vocabulary
            ids = torch.randint(low, config.vocab_size, where.shape, generator=gen, device="cpu").to(where.device)
            types = torch.randint(0, config.type_vocab_size, where.shape, generator=gen, device="cpu").to(where.device)
            scribbled = {**inputs, "input_ids": torch.where(where, ids, inputs["input_ids"])}
            if "token_type_ids" in inputs:  # DistilBERT takes none
                scribbled["token_type_ids"] = torch.where(where, types, inputs["token_type_ids"])
            return scribbled

        return metamorphic.Subject(
            judge=self.judge,
            inputs=self.inputs,
            call=lambda inputs: self(inputs, states_only=True),
            tolerance=self.between(),
            scribble=scribble,
            room=min(self.bert.max_length, self.cand.runs.max_tokens or self.bert.max_length) - self.mask.shape[1],
            max_batch=self.cand.runs.max_batch,
            row="text",
            values="ids",
            suffix=state_index,
        )


def model_equivalence(cand: ModelCandidate, bert: Bert, case: Case) -> float:
    """Each output the candidate gives equals the spec's. Where it gives a layer's input (hidden state i),
    layer by layer: the embeddings equal the reference's, and layer i, fed the candidate's own hidden state
    i, gives what the reference layer i gives on it (the next hidden state and every named intermediate,
    in forward order), and the pooler, fed its own last hidden state, what the reference pooler gives.
    Each layer's error is its own, not the sum of the layers before it (chained, the pre-LayerNorm sums of
    ~50 carry more than the tolerance). Where it does not (an engine giving its last hidden state and
    pooler output alone), end to end (`end_to_end`)."""
    __tracebackhide__ = True
    run = ModelRun(cand, bert, case, "model-equivalence", "model equivalence with the spec")
    out = run()
    have, n = set(run.given_states(out)), run.n_layers
    embedded = embed_names(bert.config)  # the member's: ELECTRA-small's embed.ln_out, ERNIE's embed.task_types
    refs = run._references() if have or any(name in out for name in embedded) else None
    stages = [(-1, None, [name for name in embedded if name in out])]
    stages += [
        (i, out[state_name(i)], [layer_name(i, s) for s in LAYER_NAMES if layer_name(i, s) in out])
        for i in range(n)
        if i in have
    ]
    worst = max([0.0] + [_compare_stage(run, refs, out, *stage) for stage in stages if stage[2]])
    chained = [state_name(i) for i in sorted(have) if i >= 1 and i - 1 not in have]
    if "pooler.out" in out and n not in have:
        chained.append("pooler.out")
    if chained:
        worst = max(worst, end_to_end(run, {name: out[name] for name in chained}))
    if "pooler.out" in out and n in have:  # last, in forward order: after the state it is fed
        worst = max(worst, _compare_stage(run, refs, out, POOLER, out[state_name(n)], ["pooler.out"]))
    return worst


def _compare_stage(run: ModelRun, refs, out: dict, stage, given, names: list[str]) -> float:
    """The candidate's outputs `names` at one stage (the embeddings, layer i fed its own hidden state i,
    the pooler fed its own last hidden state) against the reference's; a failing pooler names the known
    deviation it has, as an engine's end-to-end outputs do."""
    __tracebackhide__ = True
    wanted, tols, says = run.expected(stage, given, refs, names)
    fed = {-1: "", POOLER: ", fed the candidate's own last hidden state"}.get(
        stage, ", fed the candidate's own layer input"
    )
    worst, failure = 0.0, None
    for name in names:
        value = comparable(name, out[name], run.mask)
        try:
            worst = max(worst, run.judge.same(name, value, wanted[name], tols[name], f"{name} == {says[name]}{fed}"))
        except PropertyFailure as raised:
            failure = raised
            break
    if failure is None:
        return worst
    if stage == POOLER and _reporting():
        exact = ReferenceBert.from_hf(run.own_model(), dtype=torch.float64, lazy=True)
        pooled = {"pooler.out": out["pooler.out"]}
        failure = failure.with_details(deviations.explain(exact, run.inputs, pooled, run.mask.bool()).lines())
    raise failure


POOLER = "pooler"  # `ModelRun.expected`'s stage for the pooler, fed the candidate's own last hidden state


def end_to_end(run: ModelRun, outputs: dict[str, torch.Tensor]) -> float:
    """Outputs whose input the candidate does not give (its last hidden state and pooler output alone, as
    an engine gives them) against the float64 reference run end to end from the same ids over the same
    weights, at real tokens. The tolerance is derived per output and input, FlashAttention's rule
    (`bertcheck.spec.low_precision`) in every dtype: at most K_CHAINED = 4 times the error HF's own model
    makes end to end in that dtype on the same input (not FlashAttention's 2: the outputs of chained layers,
    `low_precision.K_CHAINED`), plus one unit in the last place at the output's largest value.
    One forward of HF's model and one of the float64 reference an example. On the failure reported (the
    shrunk one), the reference is rerun under each known deviation (`bertcheck.spec.deviations`) to name
    the likely bug."""
    __tracebackhide__ = True
    case, inputs = run.case, run.inputs
    hf = run.own_model()
    exact = ReferenceBert.from_hf(hf, dtype=torch.float64, lazy=True)
    wanted = deviations.run_to(exact, inputs, outputs)
    with torch.no_grad():
        theirs_all = hf(**inputs, output_hidden_states=True, return_dict=True)
    theirs = {name: _hf_output(theirs_all, name) for name in outputs}
    del theirs_all
    real = run.mask.bool()
    yardsticks = {name: Yardstick.of(case.dtype, theirs[name], None, wanted[name], real, K_CHAINED) for name in outputs}
    worst, failure = 0.0, None
    for name, value in outputs.items():
        b = yardsticks[name]
        expectation = f"{state_index(name)} == the float64 reference run end to end from the ids, {b.says()}"
        # Where: the output, not the layer its name says. An end-to-end difference may come from any
        # layer before it, and the report must not single out the last.
        where = f"{state_index(name)}, end to end"
        try:
            worst = max(worst, run.judge.close(where, name, value, wanted[name], b.tolerance(), expectation))
        except PropertyFailure as raised:
            failure = raised
            break
    if failure is None:
        return worst
    if _reporting():
        explained = deviations.explain(exact, inputs, outputs, real, spec=wanted)
        failure = failure.with_details(explained.lines())
    raise failure


def _run_stage(reference: ReferenceBert, stage, given, ids, types, mask, names) -> dict[str, torch.Tensor]:
    """What `reference` gives at `ModelRun.expected`'s `stage`: at least the activations `names`."""
    if stage == -1:
        return reference.embed(ids, types)
    if stage == POOLER:
        return reference.pool(given)
    return reference.layer_keeping(stage, given, mask, names)


def _hf_output(out, name: str) -> torch.Tensor:
    if name == "pooler.out":
        if out.pooler_output is None:
            raise Unavailable("the model has no pooler: a candidate's pooler_output has nothing to be compared with")
        return out.pooler_output
    return out.hidden_states[0 if name == "embed.out" else int(name.split(".")[1]) + 1]


def _reporting() -> bool:
    """Whether this failure is the one reported: outside Hypothesis, or its final replay of the shrunk
    example (not each example tried while shrinking, which would run the catalogue every time)."""
    from hypothesis.control import current_build_context, currently_in_test_context

    return not currently_in_test_context() or current_build_context().is_final


def batching(cand: ModelCandidate, bert: Bert, case: Case) -> float:
    """Each text run alone, unpadded, gives the hidden states it has in the padded batch; reversing the
    batch reverses them."""
    __tracebackhide__ = True
    return metamorphic.batching(ModelRun(cand, bert, case, "batching", "batch invariance").subject())


def padding(cand: ModelCandidate, bert: Bert, case: Case) -> float:
    """Other ids and token types at padded positions, or more padding appended, leave every real token's
    hidden states unchanged."""
    __tracebackhide__ = True
    return metamorphic.padding(ModelRun(cand, bert, case, "padding", "padding invariance").subject())


def determinism(cand: ModelCandidate, bert: Bert, case: Case) -> float:
    """The same input twice gives bit for bit the same hidden states (in eval mode)."""
    __tracebackhide__ = True
    return metamorphic.determinism(ModelRun(cand, bert, case, "determinism", "eval-mode determinism").subject())
