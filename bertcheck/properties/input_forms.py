"""Every way users call `BertModel`, each a property: the mask as int32, bool or float, 3D and 4D masks,
omitted arguments, explicit positions, `inputs_embeds`, `return_dict=False`, the output flags,
`head_mask`, the autograd modes, and padding to a fixed length.

Across releases some of these broke while the plain call (ids and the tokenizer's 2D int64 mask, under
`torch.no_grad`) stayed bit for bit: a suite that drives only the plain call passes such a release. Each
form is run on every attention implementation the release has, and must give

- the plain call's hidden states on the same input, where the form means the same thing; or
- where it changes the meaning (a mask that differs per query, shifted or permuted positions, a head
  masked), what the reference gives fed the same: the embeddings, then layer i fed the form's own
  hidden state i, so a failure names the first layer that differs.

A form the release does not have (a 4D mask before 5.0; a 3D mask or `head_mask` from 5.0 on; a boolean
4D mask under eager attention on 5.x, which adds it to the scores as 0/1) is skipped with the reason
(`Form.lacks`, per attention implementation); a form that raises on a valid input is a failure of HF's
model, naming the form. Each example costs the form's forward and the plain one per implementation
(`Form.forwards`); the plain one is shared between the forms of one input (`_plain`).
"""

from __future__ import annotations

import inspect
import weakref
from collections.abc import Callable
from dataclasses import dataclass, field

import torch

from bertcheck.subjects._compat import accepts_4d_mask, attention_implementations, transformers_major
from bertcheck.inputs.cases import Case
from bertcheck.properties.failures import Judge, Unavailable
from bertcheck.spec.family import SEQUENTIAL, of_config
from bertcheck.spec.names import layer_name
from bertcheck.properties.outputs import outputs_close
from bertcheck.spec.names import state_index, state_name
from bertcheck.subjects.subject import Bert
from bertcheck.spec.tolerances import EXACT, tolerances_for


@dataclass
class Call:
    """One form's call, and what it is held to."""

    kwargs: dict  # the form's arguments to the model (besides output_hidden_states and return_dict)
    plain: dict | None = None  # the plain call it must equal (None: the drawn inputs as they are)
    reference: dict | None = None  # else what the reference is fed: "mask", "position_ids", "head_mask"
    mode: Callable = torch.no_grad  # the autograd mode the form's call runs under
    return_dict: bool = True
    hidden_states: bool = True  # output_hidden_states
    attentions: bool = False  # output_attentions
    tokens: int | None = None  # the plain call's length, where the form pads further (compare those)
    all_real: bool = False  # compare every position: the form's call has no padding


@dataclass(frozen=True)
class Form:
    key: str  # `bertcheck check form-KEY`
    title: str  # as a failure names it
    call: Callable[[torch.nn.Module, dict, Case, Bert], Call]
    # Why this release lacks the form on an attention implementation ("eager", "sdpa"); None: it has it.
    lacks: Callable[[str], str | None] = field(default=lambda implementation: None)
    forwards: str = "2 forwards per attention implementation: the form and the plain call"


# What a form held to the reference costs (`Form.forwards`).
AGAINST_REFERENCE = "2 forwards per attention implementation: the form, and the reference fed its hidden states"


# ---- what a release has -----------------------------------------------------------------------------


def _version() -> str:
    import transformers

    return transformers.__version__


def _lacks_4d(implementation: str) -> str | None:
    if accepts_4d_mask():
        return None
    return f"transformers {_version()} takes a 2D or 3D attention_mask only (it raises 'Wrong shape' on 4D)"


def _lacks_4d_bool(implementation: str) -> str | None:
    if implementation == "eager" and accepts_4d_mask():
        # Measured on 5.24: a boolean 4D mask masks nothing under eager attention, silently.
        return (
            f"transformers {_version()} hands a 4D mask to the attention as it is, 'already prepared' for the "
            "implementation: eager's is additive, and a boolean one is added to its scores as 0/1"
        )
    return _lacks_4d(implementation)


def _lacks_3d(implementation: str) -> str | None:
    if transformers_major() < 5:
        return None
    return (
        f"transformers {_version()} takes a 2D or 4D attention_mask (masking_utils): the 3D form of 4.x "
        "(get_extended_attention_mask) is gone, and a 3D mask fails inside torch's expand"
    )


def _lacks_head_mask(implementation: str) -> str | None:
    from transformers import BertModel

    if "head_mask" in inspect.signature(BertModel.forward).parameters:
        return None
    return f"transformers {_version()} removed BertModel's head_mask argument"


# ---- the forms ----------------------------------------------------------------------------------------


def _mask_as(dtype_of: Callable) -> Callable:
    return lambda model, inputs, case, bert: Call(
        {**inputs, "attention_mask": inputs["attention_mask"].to(dtype_of(case))}
    )


def _broadcast_3d(mask: torch.Tensor) -> torch.Tensor:
    B, T = mask.shape
    return mask[:, None, :].expand(B, T, T).contiguous()  # (B, T, T): every query sees the 2D mask's keys


def _per_query(mask: torch.Tensor) -> torch.Tensor:
    """A (B, T, T) mask that really differs per query, as packed sequences use: each row's real tokens
    split in two halves that attend only within themselves; padded queries see the row's real keys."""
    B, T = mask.shape
    out = _broadcast_3d(mask).clone()
    for b in range(B):
        n = int(mask[b].sum())
        half = max(1, n // 2)
        out[b, :half, half:] = 0
        out[b, half:n, :half] = 0
    return out


def _mask_3d(model, inputs, case, bert) -> Call:
    return Call({**inputs, "attention_mask": _broadcast_3d(inputs["attention_mask"])})


def _mask_3d_per_query(model, inputs, case, bert) -> Call:
    mask = _per_query(inputs["attention_mask"])
    return Call({**inputs, "attention_mask": mask}, reference={"mask": mask})


def _mask_4d_bool(model, inputs, case, bert) -> Call:
    return Call({**inputs, "attention_mask": _broadcast_3d(inputs["attention_mask"])[:, None].bool()})


def _mask_4d_additive(model, inputs, case, bert) -> Call:
    keep = _broadcast_3d(inputs["attention_mask"])[:, None].to(case.dtype)  # (B, 1, T, T)
    return Call({**inputs, "attention_mask": (1.0 - keep) * torch.finfo(case.dtype).min})


def _mask_omitted(model, inputs, case, bert) -> Call:
    ones = {**inputs, "attention_mask": torch.ones_like(inputs["attention_mask"])}
    return Call({**inputs, "attention_mask": None}, plain=ones, all_real=True)


def _types_omitted(model, inputs, case, bert) -> Call:
    zeros = {**inputs, "token_type_ids": torch.zeros_like(inputs["token_type_ids"])}
    return Call({**inputs, "token_type_ids": None}, plain=zeros)


def _arange(inputs) -> torch.Tensor:
    B, T = inputs["input_ids"].shape
    return torch.arange(T, device=inputs["input_ids"].device).expand(B, T)


def _positions_arange(model, inputs, case, bert) -> Call:
    positions = _arange(inputs)
    if bert.member.positions == SEQUENTIAL:  # BERT's own positions, given: the plain call's meaning
        return Call({**inputs, "position_ids": positions})
    # RoBERTa's family counts from padding_idx + 1: arange is another meaning, which the reference follows
    return Call({**inputs, "position_ids": positions}, reference={"position_ids": positions})


def _positions_shifted(model, inputs, case, bert) -> Call:
    T = inputs["input_ids"].shape[1]
    room = bert.config.max_position_embeddings - T  # the largest shift that stays inside the position table
    if room < 1:
        return _positions_arange(model, inputs, case, bert)  # a full-length input: no shift exists
    positions = _arange(inputs) + 1 + (3 * T) % room
    return Call({**inputs, "position_ids": positions}, reference={"position_ids": positions})


def _positions_permuted(model, inputs, case, bert) -> Call:
    B, T = inputs["input_ids"].shape
    order = torch.randperm(T, generator=torch.Generator().manual_seed(T * 8 + B), device="cpu").to(
        inputs["input_ids"].device
    )
    positions = order.expand(B, T)
    return Call({**inputs, "position_ids": positions}, reference={"position_ids": positions})


def _inputs_embeds(model, inputs, case, bert) -> Call:
    with torch.no_grad():
        embeds = model.get_input_embeddings()(inputs["input_ids"])
    return Call({**{k: v for k, v in inputs.items() if k != "input_ids"}, "inputs_embeds": embeds})


def _head_mask_ones(model, inputs, case, bert) -> Call:
    config = bert.config
    ones = torch.ones(config.num_hidden_layers, config.num_attention_heads, dtype=case.dtype, device=case.device)
    return Call({**inputs, "head_mask": ones})


def _one_head_masked(bert, inputs) -> torch.Tensor:
    """Which head is zeroed follows from the input's shape, so a reproduce line masks the same head."""
    config = bert.config
    B, T = inputs["input_ids"].shape
    heads = torch.ones(config.num_hidden_layers, config.num_attention_heads, device="cpu")
    heads[T % config.num_hidden_layers, (7 * B + T) % config.num_attention_heads] = 0
    return heads


def _head_mask_one(model, inputs, case, bert) -> Call:
    heads = _one_head_masked(bert, inputs).to(case.dtype).to(case.device)
    return Call({**inputs, "head_mask": heads}, reference={"head_mask": heads})


def _padded_to_max_length(model, inputs, case, bert) -> Call:
    T = inputs["input_ids"].shape[1]
    to = 128 if T <= 128 else bert.max_length
    padded = bert.encode(case, pad_to=to)  # a full-length row: the heap is trimmed after it (`note_input`)
    return Call(padded, tokens=T)


FORMS = {
    form.key: form
    for form in (
        Form("mask-int32", "attention_mask as int32 (B, T)", _mask_as(lambda case: torch.int32)),
        Form("mask-bool", "attention_mask as bool (B, T)", _mask_as(lambda case: torch.bool)),
        Form("mask-float", "attention_mask as float 0/1 (B, T)", _mask_as(lambda case: case.dtype)),
        Form("mask-3d", "3D attention mask (B, T, T), the 2D mask for every query", _mask_3d, _lacks_3d),
        Form(
            "mask-3d-per-query",
            "3D attention mask (B, T, T) that differs per query",
            _mask_3d_per_query,
            _lacks_3d,
            AGAINST_REFERENCE,
        ),
        Form("mask-4d-bool", "4D boolean attention mask (B, 1, T, T)", _mask_4d_bool, _lacks_4d_bool),
        Form(
            "mask-4d-additive",
            "4D additive attention mask (B, 1, T, T), 0 / dtype minimum",
            _mask_4d_additive,
            _lacks_4d,
        ),
        Form("mask-omitted", "attention_mask omitted (all ones)", _mask_omitted),
        Form("token-types-omitted", "token_type_ids omitted (zeros)", _types_omitted),
        Form("positions-arange", "position_ids given as arange", _positions_arange),
        Form(
            "positions-shifted",
            "position_ids shifted (arange + k)",
            _positions_shifted,
            forwards=AGAINST_REFERENCE,
        ),
        Form(
            "positions-permuted",
            "position_ids permuted",
            _positions_permuted,
            forwards=AGAINST_REFERENCE,
        ),
        Form("inputs-embeds", "inputs_embeds (the ids' word embeddings) for input_ids", _inputs_embeds),
        Form("return-tuple", "return_dict=False", lambda m, inputs, c, b: Call(dict(inputs), return_dict=False)),
        Form(
            "output-attentions",
            "output_attentions=True",
            lambda m, inputs, c, b: Call(dict(inputs), attentions=True),
            forwards="2 forwards per attention implementation; the reference's pattern per layer",
        ),
        Form(
            "hidden-states-unasked",
            "output_hidden_states not asked (last_hidden_state alone)",
            lambda m, inputs, c, b: Call(dict(inputs), hidden_states=False),
        ),
        Form("head-mask-ones", "head_mask of ones", _head_mask_ones, _lacks_head_mask),
        Form(
            "head-mask-one-head",
            "head_mask with one head zeroed",
            _head_mask_one,
            _lacks_head_mask,
            AGAINST_REFERENCE,
        ),
        Form(
            "inference-mode",
            "under torch.inference_mode",
            lambda m, inputs, c, b: Call(dict(inputs), mode=torch.inference_mode),
        ),
        Form("grad-enabled", "with grad enabled", lambda m, inputs, c, b: Call(dict(inputs), mode=torch.enable_grad)),
        Form("padding-max-length", 'padding="max_length" (128 or 512 tokens)', _padded_to_max_length),
    )
}


# ---- the property ---------------------------------------------------------------------------------------


def key_of(form: Form) -> str:
    """The form's property key in `bertcheck.properties.registry`."""
    return f"form-{form.key}"


def member_lacks(form: Form, config) -> str | None:
    """Why a family member's own forward takes no such form whatever the attention implementation (ALBERT
    and DistilBERT on 4.x: a 2D attention_mask only; DistilBERT: no token types, and on 4.x no
    position_ids); None where it takes it as BertModel does."""
    member = of_config(config)
    if form.key == "token-types-omitted" and not member.token_types:
        return f"{member.model_class} has no token types: its forward takes no token_type_ids to omit"
    if form.key.startswith("positions-") and not _takes(member, "position_ids"):
        return f"transformers {_version()}'s {member.model_class} takes no position_ids (it numbers them itself)"
    if member.model_type in ("albert", "distilbert") and form.key.startswith("mask-3d") and transformers_major() < 5:
        return (
            f"{member.model_class} takes a 2D attention_mask (B, T) only: transformers {_version()} reshapes a 3D "
            "one to fit its scores, and fails"
        )
    return None


def _takes(member, argument: str) -> bool:
    """Whether the member's model class's forward has `argument` in the installed transformers."""
    import transformers

    return argument in inspect.signature(getattr(transformers, member.model_class).forward).parameters


def lacked(form: Form) -> str | None:
    """Why this release runs the form on none of its attention implementations; None where it runs it on one."""
    reasons = [form.lacks(name) for name in attention_implementations()]
    return reasons[0] if all(reasons) else None


def skipped_on(form: Form) -> dict[str, str]:
    """The attention implementations this release has but lacks the form on, each with why."""
    return {name: why for name in attention_implementations() if (why := form.lacks(name))}


def check_form(form: Form, bert: Bert, case: Case) -> float:
    """The form gives what it must (module docstring) on every attention implementation the release has;
    its worst share of the tolerance. Raises `Unavailable` where the release lacks the form."""
    __tracebackhide__ = True
    why = lacked(form) or member_lacks(form, bert.config)
    if why:
        raise Unavailable(why)
    skipped = skipped_on(form)
    implementations = [name for name in attention_implementations(bert.config) if name not in skipped]
    inputs = bert.encode(case)
    judge = Judge(
        key_of(form),
        f"input form: {form.title}",
        case,
        bert.model_name,
        inputs["attention_mask"].bool(),
        ids=inputs["input_ids"],
    )
    tol = tolerances_for(case.dtype).values
    worst = 0.0
    for implementation in implementations:
        with bert.attention(implementation, case.dtype, case.device) as model:
            call = form.call(model, inputs, case, bert)
            out = _run(judge, model, call, f"{form.title}, {implementation} attention")
            named = f"{form.title} ({implementation})"
            if call.reference is not None:
                worst = max(worst, _against_reference(judge, bert, case, inputs, call, out, named))
            else:
                worst = max(worst, _against_plain(judge, model, inputs, call, out, named, tol))
            if call.attentions:
                worst = max(worst, _attentions(judge, bert, case, inputs, out, implementation, named))
    return worst


def _run(judge: Judge, model, call: Call, said: str):
    """The form's forward; a valid form that raises is HF's failure, named, in one line."""
    __tracebackhide__ = True
    try:
        return _forward(model, call)
    except Exception as err:  # noqa: BLE001 - any exception of HF's model on a valid form is its failure
        raise judge.fail("the model call", "hidden_states", f"{said} is accepted", [f"raised {one_line(err)}"])


def _forward(model, call: Call):
    with call.mode():
        return model(
            **call.kwargs,
            output_hidden_states=call.hidden_states,
            output_attentions=call.attentions,
            return_dict=call.return_dict,
        )


def one_line(err: Exception) -> str:
    """An exception as one line: its type and the first line of its message."""
    first = (str(err).strip().splitlines() or [""])[0][:300]
    return f"{type(err).__name__}: {first}"


def form_outputs(form: Form, bert: Bert, model, inputs: dict, case: Case) -> dict[str, torch.Tensor]:
    """What a baseline records of the form on `inputs` (`bertcheck.tools.baseline`): its last hidden state at the
    plain call's positions (""), and the last layer's attentions where it returns them ("attentions",
    (B, T, nh, T): indexed by real query first). Raises what HF's model raises."""
    call = form.call(model, inputs, case, bert)
    out = _forward(model, call)
    last = out.last_hidden_state if call.return_dict else out[0]
    outputs = {"": last.detach()[:, : call.tokens] if call.tokens is not None else last.detach()}
    if call.attentions and out.attentions and out.attentions[-1] is not None:
        outputs["attentions"] = out.attentions[-1].detach().transpose(1, 2)
    return outputs


# The plain call's outputs, shared by the forms: the items of one model and shard draw the same inputs
# and run on one worker, one after another (the `plain-call` group of `bertcheck.inputs.shards`), each form all
# its examples in turn, so a worker runs the plain call once per input and attention implementation for
# every form of the unit. Kept per model object, up to `_KEEP_BYTES`, the first inputs that fit and none
# after: every form runs the unit's inputs in the same order, so each one kept is a hit for every later
# form, where dropping the oldest for the newest would miss every input once they outgrow the budget. The
# plugin forgets them where a unit ends (`forget_plain`). Measured under ci, bert-base, 7 examples on 2
# implementations: 29 MiB kept at most (float64, shard 2 of 4, 12 calls), 16 MiB (float64, shard 4),
# 6 MiB (float32, shard 1): everything fits, and 64 MiB bounds a draw of longer inputs. The plain calls
# of the two forms that change the input (`mask-omitted`, `token-types-omitted`) are not shared: not kept.
# Keyed on everything that makes the call give other values: the model's class (a planted mutant swaps
# it), attention implementation, mode, its modules, and each parameter's dtype, storage and version
# (bertcheck converts a model between float32 and float64 in place; a test may edit a weight in place;
# only a write through `.data` goes unseen, as for `candidate.reads_only`, and would make a form fail, not
# pass), and the inputs' values.
_PLAIN: "weakref.WeakKeyDictionary[torch.nn.Module, dict]" = weakref.WeakKeyDictionary()
_KEEP_BYTES = 64 * 2**20


def _plain(model, kwargs: dict, keep: bool = True):
    key = (
        type(model),
        getattr(model.config, "_attn_implementation", None),
        model.training,
        tuple(id(module) for module in model.modules()),
        tuple((p.dtype, p.device, p.data_ptr(), p._version) for p in model.parameters()),
        tuple((name, _fingerprint(value)) for name, value in sorted(kwargs.items())),
    )
    kept = _PLAIN.setdefault(model, {})
    if key in kept:
        return kept[key][0]
    with torch.no_grad():
        out = model(**kwargs, output_hidden_states=True, return_dict=True)
    size = _nbytes(out)
    if keep and sum(used for _, used in kept.values()) + size <= _KEEP_BYTES:
        kept[key] = (out, size)
    return out


def forget_plain() -> None:
    """Drop the shared plain calls: where a unit of forms ends, and where the benchmark prices one form
    alone, its plain call included."""
    _PLAIN.clear()


def _nbytes(out) -> int:
    """The bytes of the tensors `out` holds, each storage once (last_hidden_state is hidden_states[-1])."""
    storages = {}
    for value in out.values():
        for tensor in value if isinstance(value, tuple) else (value,):
            if isinstance(tensor, torch.Tensor):
                storages[tensor.untyped_storage().data_ptr()] = tensor.untyped_storage().nbytes()
    return sum(storages.values())


def _fingerprint(value):
    if not isinstance(value, torch.Tensor):
        return value
    return (tuple(value.shape), value.dtype, str(value.device), hash(value.detach().cpu().numpy().tobytes()))


def _detached(states) -> list[torch.Tensor]:
    return [s.detach() for s in states]


def _against_plain(judge: Judge, model, inputs: dict, call: Call, out, named: str, tol) -> float:
    """The form's outputs equal the plain call's on the same input: every hidden state at real tokens."""
    __tracebackhide__ = True
    plain = _plain(model, inputs) if call.plain is None else _plain(model, call.plain, keep=False)
    tokens = False if call.all_real else True
    expectation = f"{named} == the plain call"
    if not call.return_dict:
        return _same_tuple(judge, out, plain, expectation)
    if not call.hidden_states:
        name = layer_name(len(plain.hidden_states) - 2, "resid_post")
        return judge.same(
            name, out.last_hidden_state.detach(), plain.last_hidden_state, tol, f"{expectation} (last_hidden_state)"
        )
    states = _detached(out.hidden_states)
    if call.tokens is not None:  # padded further: the plain call's positions, which hold every real token
        states = [s[:, : call.tokens] for s in states]
    actual = {state_name(i): s for i, s in enumerate(states)}
    expected = {state_name(i): s for i, s in enumerate(plain.hidden_states)}
    if len(actual) != len(expected):
        raise judge.fail(None, "embed.out", expectation, [f"{len(actual)} hidden states, expected {len(expected)}"])
    return outputs_close(judge, actual, expected, tol, expectation, tokens=tokens, suffix=state_index)


def _same_tuple(judge: Judge, out, plain, expectation: str) -> float:
    """return_dict=False gives the ModelOutput's tensors, in its order, bit for bit."""
    __tracebackhide__ = True
    fields = list(plain.keys())
    if not isinstance(out, tuple) or len(out) != len(fields):
        got = f"a {type(out).__name__} of {len(out)}" if isinstance(out, tuple) else f"a {type(out).__name__}"
        raise judge.fail(
            None, "embed.out", expectation, [f"{got}, expected a tuple of {len(fields)}: {', '.join(fields)}"]
        )
    for field_name, value, wanted in zip(fields, out, plain.values()):
        if field_name == "hidden_states":
            actual = {state_name(i): s for i, s in enumerate(value)}
            expected = {state_name(i): s for i, s in enumerate(wanted)}
            outputs_close(
                judge,
                actual,
                expected,
                EXACT,
                f"{expectation}, tuple item {fields.index(field_name)}",
                suffix=state_index,
            )
        elif field_name == "last_hidden_state":
            name = layer_name(len(plain.hidden_states) - 2, "resid_post")
            judge.same(name, value, wanted, EXACT, f"{expectation}, tuple item 0 (last_hidden_state)")
        elif field_name == "pooler_output":
            judge.same("pooler.out", value, wanted, EXACT, f"{expectation}, tuple item 1 (pooler_output)")
    return 0.0


def _against_reference(judge: Judge, bert: Bert, case: Case, inputs: dict, call: Call, out, named: str) -> float:
    """Where the form changes the meaning: the reference's embeddings (with the form's positions), then
    each reference layer fed the form's own hidden state i (with its mask and head mask), at real tokens."""
    __tracebackhide__ = True
    ref = bert.reference(case.dtype, case.device)
    tol = tolerances_for(case.dtype).values
    fed = call.reference
    states = _detached(out.hidden_states)
    mask = fed.get("mask", inputs["attention_mask"])
    head_mask = fed.get("head_mask")
    expectation = f"{named} == the reference fed the same"
    with torch.no_grad():
        embedded = ref.embed(inputs["input_ids"], inputs.get("token_type_ids"), position_ids=fed.get("position_ids"))
        worst = judge.same("embed.out", states[0], embedded["embed.out"], tol, f"{expectation} (hidden_states[0])")
        for i in range(len(states) - 1):
            name = layer_name(i, "resid_post")
            heads = None if head_mask is None else head_mask[i]
            wanted = ref.layer_keeping(i, states[i], mask, [name], head_mask=heads)
            worst = max(
                worst,
                judge.same(
                    name,
                    states[i + 1],
                    wanted[name],
                    tol,
                    f"{expectation}, layer {i} fed hidden_states[{i}] ({state_index(name)})",
                ),
            )
    return worst


def _attentions(judge: Judge, bert: Bert, case: Case, inputs: dict, out, implementation: str, named: str) -> float:
    """output_attentions=True: eager returns every layer's pattern; another implementation either falls
    back to eager's (the same patterns) or returns none, as 5.x documents (a warning). Returned patterns
    equal the reference's, layer i fed hidden state i, at real queries."""
    __tracebackhide__ = True
    patterns = out.attentions
    n = bert.config.num_hidden_layers
    refused = patterns is None or len(patterns) == 0 or all(p is None for p in patterns)
    if refused and implementation != "eager":
        return 0.0
    if refused or len(patterns) != n or any(p is None for p in patterns):
        got = "none" if refused else f"{sum(p is not None for p in patterns)} of {len(patterns)}"
        raise judge.fail(
            None,
            layer_name(0, "pattern"),
            f"{named} returns every layer's attention",
            [f"{got} returned, expected {n}"],
        )
    ref = bert.reference(case.dtype, case.device)
    tol = tolerances_for(case.dtype).values
    mask = inputs["attention_mask"]
    worst = 0.0
    with torch.no_grad():
        for i, pattern in enumerate(patterns):
            name = layer_name(i, "pattern")
            wanted = ref.layer_keeping(i, out.hidden_states[i].detach(), mask, [name])[name]
            # (B, nh, T, T) -> (B, T, nh, T): real query rows compared, index (b, query, head, key)
            worst = max(
                worst,
                judge.same(
                    name,
                    pattern.detach().transpose(1, 2),
                    wanted.transpose(1, 2),
                    tol,
                    f"{named}: attentions[{i}] == the reference layer {i}'s pattern",
                ),
            )
    return worst
