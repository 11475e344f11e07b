"""The reimplementation protocol: how a candidate BERT is handed its weights, called, and held to its contract.

A *layer factory* ``factory(hf_layer: BertLayer, config) -> fn`` takes its weights from the HF layer it
is handed (a private copy: free to keep or change) and returns ``fn(hidden_states, attention_mask)``:

- ``hidden_states`` (B, T, H) in the dtype and on the device under test,
- ``attention_mask`` (B, T) long, 1 for real tokens and 0 for padding,
- returns the layer output (B, T, H), or a mapping of vocabulary names (``bertcheck.spec.names``) that
  holds ``resid_post`` and any intermediates it can give (``resid_mid``, ``mlp_post``, ...): each one
  given is compared too.

A *model factory* ``factory(hf_model: BertModel) -> fn`` returns ``fn(input_ids, attention_mask,
token_type_ids)`` giving the hidden states, embeddings first then each layer (num_hidden_layers + 1
tensors of (B, T, H)), or a mapping with ``hidden_states`` and any full vocabulary names
(``embed.ln_in``, ``blocks.3.resid_mid``, ...). An HF ``ModelOutput`` is read for its hidden states.

Anything else -- an import path that does not resolve, a factory or call that raises, an output of the
wrong type, shape, dtype or device -- is a `CandidateError` naming the candidate and what it returned:
the candidate cannot be checked at all. A NaN or infinity in an output is a property failure.
"""

from __future__ import annotations

from copy import deepcopy
import importlib
import os
import sys
from collections.abc import Callable, Mapping, Sequence

import torch

from bertcheck.subjects.arrays import NotAnArray, kind_of, to_torch
from bertcheck.inputs.capabilities import Runs, declared
from bertcheck.inputs.devices import unguarded
from bertcheck.spec.family import embed_names, embedding_width, types_given
from bertcheck.spec.names import (
    LAYER_NAMES,
    LAYER_SHAPES,
    POOLER_NAMES,
    PROJECTED_EMBED_NAMES,
    TASK_TYPES,
    layer_name,
)
from bertcheck.spec.names import state_name


class CandidateError(RuntimeError):
    """The candidate cannot be checked: what was asked of it, and what it did instead."""


class FactoryError(CandidateError):
    """The factory itself cannot be loaded, or raised, or returned no function: nothing can run."""


def load_factory(path: str) -> Callable:
    """``package.module:attr`` (attr may be dotted) -> the object, importable from the environment or
    the current directory. Every way this can go wrong is a `CandidateError` saying which."""
    module_name, colon, attr = path.partition(":")
    if not colon or not module_name or not attr:
        raise FactoryError(f"{path!r} is not an import path: give module:attr, such as mypkg.layers:make_layer")
    if os.getcwd() not in sys.path and "" not in sys.path:
        sys.path.insert(0, os.getcwd())  # `bertcheck verify` from a project root finds the project's modules
    try:
        obj = importlib.import_module(module_name)
    except ModuleNotFoundError as err:
        if err.name and module_name.startswith(err.name):
            raise FactoryError(
                f"{path}: cannot import {module_name!r}: no module named {err.name!r} "
                f"(is the package installed, or the current directory its parent?)"
            ) from None
        raise FactoryError(f"{path}: importing {module_name!r} failed: {err}") from err
    except Exception as err:  # noqa: BLE001 - the user's module ran and raised: say so, whatever it was
        raise FactoryError(f"{path}: importing {module_name!r} raised {type(err).__name__}: {err}") from err
    for part in attr.split("."):
        if not hasattr(obj, part):
            public = sorted(n for n in dir(obj) if not n.startswith("_"))
            raise FactoryError(
                f"{path}: {getattr(obj, '__name__', obj)!r} has no attribute {part!r}; it has {public[:20]}"
            )
        obj = getattr(obj, part)
    if not callable(obj):
        raise FactoryError(f"{path} is a {type(obj).__name__}, not a factory (a callable)")
    return obj


def _name_of(factory: Callable) -> str:
    module = getattr(factory, "__module__", None) or "?"
    return f"{module}:{getattr(factory, '__qualname__', repr(factory))}"


def _device_matches(actual: torch.device, wanted: str) -> bool:
    want = torch.device(wanted)
    return actual.type == want.type and (want.index is None or actual.index == want.index)


def _validate(name: str, what: str, value, shape: tuple, dtype: torch.dtype, device: str) -> torch.Tensor:
    """`value` as a torch tensor (any array type: `arrays`), held to `shape`, `dtype` and `device`."""
    try:
        value = to_torch(value)
    except NotAnArray:
        raise CandidateError(
            f"{name} returned {kind_of(value)} for {what}, expected an array of shape {shape}: a torch tensor, "
            "a numpy array, or anything with __dlpack__ or __array__"
        ) from None
    except (BufferError, RuntimeError, TypeError) as err:
        raise CandidateError(f"{name} returned {kind_of(value)} for {what}, which torch cannot take: {err}") from None
    problems = []
    if tuple(value.shape) != shape:
        problems.append(f"shape {tuple(value.shape)}, expected {shape}")
    if value.dtype != dtype:
        problems.append(f"dtype {value.dtype}, expected {dtype} (the input's)")
    if not _device_matches(value.device, device):
        problems.append(f"device {value.device}, expected {device} (the input's)")
    if problems:
        raise CandidateError(f"{name} returned {what} with " + "; ".join(problems))
    return value.detach()


def reads_only(factory: Callable) -> Callable:
    """Mark a factory that only reads the module it is handed and never changes it (no in-place
    fusing, casting or weight surgery): bertcheck then hands it the model under test itself, not a
    private copy, which for bert-base is 0.4 GB in float32 and 0.9 GB in float64 per build.

    The promise is held (`_Watch`): a factory or function that changes a weight or buffer anyway is a
    `CandidateError` naming it, and the model under test is loaded again for whatever runs next. Seen:
    any change during the build or the first call; later, any in-place write or swapped tensor (only a
    write through ``.data`` after the first call goes unseen: summing the weights on every call would
    cost a pass over them)."""
    factory.bertcheck_reads_only = True
    return factory


def _reads_only(factory: Callable) -> bool:
    return getattr(factory, "bertcheck_reads_only", False)


def _handed(factory: Callable, module: torch.nn.Module) -> torch.nn.Module:
    """What a factory is handed: the module itself for a `reads_only` factory, else a private copy, so
    a factory that changes what it is given cannot change the model under test."""
    return module if _reads_only(factory) else deepcopy(module)


class ChangedWhatItRead(FactoryError):
    """A `reads_only` factory, or the function it built, changed the module it was handed: nothing it
    gives can be trusted, so nothing more of it runs."""


def _tensors(module: torch.nn.Module):
    yield from module.named_parameters()
    yield from module.named_buffers()


def _identity(t: torch.Tensor) -> tuple:
    """What an in-place change or a swapped tensor changes (the version counter counts in-place writes
    through the tensor or any view of it; `.data` writes and swaps change the storage or go uncounted
    here, and the content below sees them)."""
    return (t.data_ptr(), t.dtype, tuple(t.shape), t.detach()._version)


def _content(t: torch.Tensor) -> tuple[float, float]:
    """Two sums of the values, in float64: a rounding, cast or edit of any weight changes them. A million
    values at a time: bert-base's word embeddings squared whole were a 0.19 GB temporary in float64."""
    total = squares = 0.0
    for part in t.detach().reshape(-1).split(2**20):
        d = part.double()
        total, squares = total + float(d.sum()), squares + float(torch.dot(d, d))
    return total, squares


class _Watch:
    """Holds a `reads_only` factory to its promise over the module it was handed: the content of every
    weight and buffer before the build, compared after the build and after the first call (where an
    engine that compiles lazily changes what it reads); the cheap identity after every call."""

    def __init__(self, name: str, module: torch.nn.Module, repair: Callable | None):
        self.name, self.module, self.repair = name, module, repair
        with torch.no_grad(), unguarded():
            self.before = {k: (_identity(t), _content(t)) for k, t in _tensors(module)}
        self.calls = 0

    def check(self, when: str) -> None:
        """After the build ("build") or a call ("call"): raise `ChangedWhatItRead` if anything changed."""
        deep = when == "build" or self.calls == 0
        if when == "call":
            self.calls += 1
        with torch.no_grad(), unguarded():
            now = {k: t for k, t in _tensors(self.module)}
            changed = [k for k in self.before if k not in now]
            for k, t in now.items():
                if k not in self.before:
                    changed.append(k)
                    continue
                identity, content = self.before[k]
                if _identity(t) != identity or (deep and _content(t) != content):
                    changed.append(k)
        if changed:
            if self.repair is not None:
                self.repair()  # the model under test as it was loaded, for whatever runs next
            shown = ", ".join(changed[:5]) + (f" and {len(changed) - 5} more" if len(changed) > 5 else "")
            raise ChangedWhatItRead(
                f"{self.name} is marked @bertcheck.reads_only, but its {'factory' if when == 'build' else 'function'} "
                f"changed the module it was handed: {shown}. What it computes cannot be checked against the "
                "spec computed from the same, changed weights: remove @reads_only (it is then handed a private copy)"
            )


class _Builds(dict):
    """Built candidates by (model, [layer,] dtype, device). Builds for one model and device are kept in
    one dtype at a time, as `Bert.model` keeps one copy: a build may hold a copy of the model."""

    def forget_copy(self, model: str, key: tuple) -> None:
        """`Bert.on_drop`: the copy (dtype, device) of `model` was dropped."""
        self.forget(model, *key)

    def forget(self, model: str, dtype, device: str) -> None:
        for key in [k for k in self if k[0] == model and k[-2] == dtype and k[-1] == device]:
            del self[key]

    def keep(self, key: tuple, fn: Callable) -> None:
        model, dtype, device = key[0], key[-2], key[-1]
        for other in [k for k in self if k[0] == model and k[-1] == device and k[-2] != dtype]:
            del self[other]
        self[key] = fn


class _Candidate:
    """What layer and model candidates share: their builds, dropping those with the model copy they use,
    and how a failure names the input."""

    _built: _Builds
    kind: str
    returns: str
    name: str
    # The model under test itself (`HF_LAYER`, `HF_MODEL`): built afresh each time (free: it reads the
    # module it is handed) and its failures reproduce with `bertcheck check`/`check-layer`, not `verify`.
    own = False

    def follow(self, bert) -> None:
        """Forget the builds over a model copy when `bert` drops that copy: a build shares its tensors."""
        if not self.own and self._built.forget_copy not in bert.on_drop:
            bert.on_drop.append(self._built.forget_copy)

    @property
    def runs(self) -> Runs:
        """What its factory declared it runs (`bertcheck.runs`); HF's own model and layer run everything."""
        return declared(self.factory) if not self.own else declared(None)

    def wrap(self, case):
        """The example as a failure shows it: with the candidate's name and a `verify` reproduce line."""
        from bertcheck.inputs.cases import CandidateCase

        return case if self.own else CandidateCase(case, self.name, self.kind)

    def _made(self, handed: torch.nn.Module, *args) -> Callable:
        """What the factory returns handed `handed` (and `args`): the function to check, or a
        `FactoryError` that says what it raised or returned instead."""
        try:
            with unguarded():
                fn = self.factory(handed, *args)
        except Exception as err:  # noqa: BLE001 - whatever the factory raised, the message names it
            weight = next(handed.parameters())
            raise FactoryError(
                f"the {self.kind} factory {self.name} raised {type(err).__name__}: {err} (handed a "
                f"{weight.dtype} {self.kind} on {weight.device}; --dtype restricts the dtypes drawn)"
            ) from err
        if not callable(fn):
            raise FactoryError(f"the {self.kind} factory {self.name} returned {type(fn).__name__}, not {self.returns}")
        return fn


class LayerCandidate(_Candidate):
    """A layer factory under test. Candidates built from the model's own layers are kept per (model,
    layer, dtype, device), so a compiled or exported candidate is built once, not once per example."""

    kind = "layer"
    returns = "fn(hidden_states, attention_mask)"  # what its factory must return

    def __init__(self, factory: Callable, name: str | None = None):
        self.factory, self.name = factory, name or _name_of(factory)
        self._built = _Builds()

    def build(self, hf_layer, config, key: tuple | None = None, repair: Callable | None = None) -> Callable:
        """Hand the factory a private copy of `hf_layer`; `key` caches the result (None: surgery, never cached).
        `repair` restores the model under test if a `reads_only` factory changed it anyway."""
        key = None if self.own else key
        if key is not None and key in self._built:
            return self._built[key]
        watch = _Watch(self.name, hf_layer, repair) if _reads_only(self.factory) and not self.own else None
        fn = _watched(self._made(_handed(self.factory, hf_layer), config), watch)
        if key is not None:
            self._built.keep(key, fn)
        return fn

    def call(self, fn, hidden_states: torch.Tensor, attention_mask: torch.Tensor, config) -> dict[str, torch.Tensor]:
        """Run `fn`; its outputs by short vocabulary name, each checked for type, shape, dtype and device."""
        B, T, H = hidden_states.shape
        with torch.no_grad():
            try:
                with unguarded():
                    out = fn(hidden_states, attention_mask)
            except ChangedWhatItRead:
                raise
            except Exception as err:  # noqa: BLE001
                raise CandidateError(
                    f"{self.name} raised {type(err).__name__}: {err} on hidden states "
                    f"{tuple(hidden_states.shape)} {hidden_states.dtype} on {hidden_states.device}"
                ) from err
        if not isinstance(out, Mapping):
            out = {"resid_post": out}
        unknown = [k for k in out if k not in LAYER_NAMES]
        if unknown or "resid_post" not in out:
            raise CandidateError(
                f"{self.name} returned a mapping with keys {list(out)}: it needs 'resid_post' and "
                f"names from the vocabulary only ({', '.join(LAYER_NAMES)})"
            )
        shapes = layer_shapes(B, T, config)
        dtype, device = hidden_states.dtype, str(hidden_states.device)
        return {k: _validate(self.name, k, v, shapes[k], dtype, device) for k, v in out.items()}


class ModelCandidate(_Candidate):
    """A model factory under test, built once per (model, dtype, device)."""

    kind = "model"
    returns = "fn(input_ids, attention_mask, token_type_ids)"

    def __init__(self, factory: Callable, name: str | None = None):
        self.factory, self.name = factory, name or _name_of(factory)
        self._built = _Builds()
        self._seen: set[str] = set()  # every output key its calls gave (`outputs_seen`)

    def outside(self, bert, case) -> str | None:
        """Why `case` is outside what the candidate declared it runs (None: inside): it is then never run."""
        runs = self.runs
        if runs.dtypes is not None and case.dtype not in runs.dtypes:
            return f"{self.name} runs {runs.says('dtypes')}, not {str(case.dtype).removeprefix('torch.')}"
        if not runs.runs_device(case.device):
            return f"{self.name} runs on {runs.says('devices')}, not {case.device}"
        if runs.max_batch is not None and case.batch > runs.max_batch:
            return f"{self.name} takes batches of up to {runs.max_batch}"
        if runs.max_tokens is not None and bert.encode(case)["input_ids"].shape[1] > runs.max_tokens:
            return f"{self.name} takes inputs of up to {runs.max_tokens} tokens"
        return None

    def outputs_seen(self, config) -> tuple[list[str], list[str]]:
        """What its calls gave, as HF names them, and what they never gave (so was never compared)."""
        n, seen = config.num_hidden_layers, self._seen
        states = sorted(int(k.split(".")[1]) for k in seen if k.startswith("hidden_states."))
        named = sorted(k for k in seen if k.startswith(("embed.", "blocks.")))
        compared, missing = [], []
        if len(states) == n + 1:
            compared.append(f"every hidden state (hidden_states[0] to [{n}])")
        elif states:
            compared.append(
                ", ".join(f"hidden_states[{i}]" + (" (last_hidden_state)" if i == n else "") for i in states)
            )
        absent = [i for i in range(n + 1) if i not in states]
        if absent:
            missing.append(
                f"{len(absent)} hidden states (hidden_states[{absent[0]}]"
                + (f" to [{absent[-1]}])" if len(absent) > 1 else ")")
            )
        (compared if "pooler.out" in seen else missing).append("pooler_output")
        if named:
            compared.append(f"{len(named)} named intermediates")
        else:
            missing.append("named intermediates (a failure can name no activation inside a layer)")
        return compared, missing

    @property
    def takes_a_copy(self) -> bool:
        """Whether the factory is handed a private copy of the model (not `own`, not `reads_only`)."""
        return not self.own and not _reads_only(self.factory)

    def build(self, hf_model, key: tuple, repair: Callable | None = None, copy: Callable | None = None) -> Callable:
        """Build over `hf_model` (a private copy unless `reads_only`), cached by `key`; `repair` as for a
        layer. `copy()`, where given, makes the private copy instead (`Bert.private_copy`)."""
        if self.own:
            return self.factory(hf_model)
        if key not in self._built:
            watch = _Watch(self.name, hf_model, repair) if _reads_only(self.factory) else None
            handed = copy() if copy is not None and watch is None else _handed(self.factory, hf_model)
            self._built.keep(key, _watched(self._made(handed), watch))
        return self._built[key]

    def call(self, fn, inputs: dict[str, torch.Tensor], config, dtype: torch.dtype) -> dict[str, torch.Tensor]:
        """Run `fn`; returns what it gave (`given`), each output validated, by vocabulary name: hidden state
        i as ``hidden_states.{i}``, the pooler's output as ``pooler.out``, and any full names it gave."""
        ids = inputs["input_ids"]
        with torch.no_grad():
            try:
                with unguarded():
                    out = fn(ids, inputs["attention_mask"], inputs.get("token_type_ids"))
            except ChangedWhatItRead:
                raise
            except Exception as err:  # noqa: BLE001
                raise CandidateError(
                    f"{self.name} raised {type(err).__name__}: {err} on input_ids {tuple(ids.shape)}"
                ) from err
        result = self._outputs(given(self.name, out, config), ids, config, dtype)
        self._seen.update(result)
        return result

    def _outputs(self, out: dict, ids: torch.Tensor, config, dtype: torch.dtype) -> dict[str, torch.Tensor]:
        B, T = ids.shape
        device, H, n = str(ids.device), config.hidden_size, config.num_hidden_layers
        E = embedding_width(config)  # the embeddings' width: H, or ELECTRA-small's embedding_size
        shapes = {
            **layer_shapes(B, T, config),
            **dict.fromkeys((*PROJECTED_EMBED_NAMES, TASK_TYPES), (B, T, E)),
            "resid_pre": (B, T, H),
            "embed.out": (B, T, H),
        }
        result = {}
        for key, value in out.items():
            if key.startswith("hidden_states.") or key == "last_hidden_state":
                i = n if key == "last_hidden_state" else int(key[14:])
                what, shape = (f"last_hidden_state (hidden state {n})" if i == n else f"hidden state {i}"), (B, T, H)
            elif key in POOLER_NAMES:
                what, shape = ("pooler_output" if key == "pooler.out" else key), (B, H)
            else:
                what, shape = key, shapes[key.split(".", 2)[2] if key.startswith("blocks.") else key]
            result[key] = _validate(self.name, what, value, shape, dtype, device)
        inputs_of = {i for i in range(n + 1) if f"hidden_states.{i}" in result}
        orphans = [
            key
            for key in result
            if key.startswith("blocks.") and not key.endswith(".resid_post") and int(key.split(".")[1]) not in inputs_of
        ]
        if orphans:
            i = int(orphans[0].split(".")[1])
            raise CandidateError(
                f"{self.name} gave {', '.join(orphans[:4])} without hidden state {i}, the input of layer {i}: an "
                "intermediate is compared with the reference layer fed the candidate's own layer input. Give "
                f"hidden state {i} too (in hidden_states, or by its name {state_name(i)}), or leave them out"
            )
        return result


def given(name: str, out, config) -> dict:
    """What a model candidate's function returned, as {key: array}: hidden states as ``hidden_states.{i}``,
    ``last_hidden_state``, the pooler's output as ``pooler.out``, and full vocabulary names. It may return
    an HF ``ModelOutput``; a mapping of ``hidden_states`` (all of them), ``last_hidden_state``,
    ``pooler_output`` and vocabulary names, any subset; a sequence of every hidden state; or one array,
    the last hidden state (an engine's only output)."""
    n = config.num_hidden_layers
    known = {*embed_names(config), *POOLER_NAMES}
    known |= {layer_name(i, s) for i in range(n) for s in LAYER_NAMES}
    accepted = ("hidden_states", "last_hidden_state", "pooler_output")
    if hasattr(out, "last_hidden_state") and isinstance(out, Mapping):  # an HF ModelOutput: its tensors that are set
        out = {k: getattr(out, k) for k in accepted if getattr(out, k, None) is not None}
    elif isinstance(out, Sequence) and not isinstance(out, (str, bytes)):
        out = {"hidden_states": out}
    elif not isinstance(out, Mapping):
        out = {"last_hidden_state": out}
    unknown = [k for k in out if k not in accepted and k not in known]
    if unknown or not out:
        raise CandidateError(
            f"{name} returned a mapping with keys {list(out)[:8]}: it takes {', '.join(accepted)} and full "
            "vocabulary names (embed.out, blocks.0.resid_mid, pooler.out, ...), any subset"
        )
    result = {}
    for key, value in out.items():
        if key == "hidden_states":
            if not isinstance(value, Sequence) or len(value) != n + 1:
                got = f"{len(value)} items" if isinstance(value, Sequence) else kind_of(value)
                raise CandidateError(
                    f"{name} returned {got} as hidden states, expected {n + 1}: the embeddings, then each of "
                    f"{n} layers (or give last_hidden_state alone, or each hidden state by its name)"
                )
            result.update({f"hidden_states.{i}": h for i, h in enumerate(value)})
        elif key == "last_hidden_state" and "hidden_states" not in out:
            result[f"hidden_states.{n}"] = value
        elif key == "pooler_output":
            result["pooler.out"] = value
        elif key == "embed.out":
            result["hidden_states.0"] = value
        elif key.endswith(".resid_post") and key.startswith("blocks."):
            result[f"hidden_states.{int(key.split('.')[1]) + 1}"] = value
        else:
            result[key] = value
    return result


def _watched(fn: Callable, watch: _Watch | None) -> Callable:
    """`fn`, checked by `watch` after its build and after each call (itself where nothing is watched)."""
    if watch is None:
        return fn
    watch.check("build")

    def call(*args):
        out = fn(*args)
        watch.check("call")
        return out

    return call


def layer_shapes(B: int, T: int, config) -> dict[str, tuple]:
    """The shape of each per-layer vocabulary activation for a (B, T) input (`names.LAYER_SHAPES`)."""
    sizes = {"B": B, "T": T, "H": config.hidden_size, "I": config.intermediate_size, "N": config.num_attention_heads}
    return {name: tuple(sizes[letter] for letter in LAYER_SHAPES[name]) for name in LAYER_NAMES}


# ---- bertcheck's own reference, as a candidate: what every property must accept ------------------


@reads_only
def reference_layer(hf_layer, config) -> Callable:
    """A layer factory: bertcheck's from-scratch reference layer, every intermediate returned."""
    from bertcheck.spec.reference import ReferenceBert

    reference = ReferenceBert.single_layer(hf_layer, config)

    def fn(hidden_states, attention_mask):
        acts = reference.layer(0, hidden_states, attention_mask)
        return {name.split(".", 2)[2]: value for name, value in acts.items()}

    return fn


# What bertcheck's own model candidate returns besides its hidden states: one intermediate of each
# sublayer, of its first and last layers. The path that compares a model candidate's intermediates is
# the same at every layer, and each layer's every activation is checked against HF by the hidden-states
# property already; at every layer they were 36 outputs, 0.22 GB at 512 tokens in float64 for a batch
# of 2, which every metamorphic call held beside the hidden states it compares.
REFERENCE_MODEL_NAMES = ("attn_out", "resid_mid", "mlp_out")


@reads_only
def reference_model(hf_model) -> Callable:
    """A model factory: bertcheck's reference, run end to end, returning the embeddings' activations,
    every hidden state and, of the first and last layers, `REFERENCE_MODEL_NAMES`."""
    from bertcheck.spec.reference import ReferenceBert

    reference = ReferenceBert.from_hf(hf_model)
    n = hf_model.config.num_hidden_layers

    def fn(input_ids, attention_mask, token_type_ids):
        with torch.no_grad():
            named = reference.embed(input_ids, token_type_ids)
            states = [named["embed.out"]]
            for i in range(n):
                # The rest of the layer's activations are never held beside these (its attention scores
                # and probabilities and 3072-wide intermediates, ~105 MB a row at 512 tokens in float64).
                shown = REFERENCE_MODEL_NAMES if i in (0, n - 1) else ()
                kept = [layer_name(i, short) for short in (*shown, "resid_post")]
                acts = reference.layer_keeping(i, states[-1], attention_mask, kept)
                states.append(acts.pop(layer_name(i, "resid_post")))
                named.update(acts)
        return {"hidden_states": states, **named}

    return fn


# ---- the HF model under test, as a candidate of its own spec ----------------------------------------


@reads_only
def hf_layer(layer, config) -> Callable:
    """A layer factory: HF's `BertLayer` itself, returning its output and every activation its hooks read."""
    from bertcheck.subjects.capture import capture_layer

    def fn(hidden_states, attention_mask):
        acts = capture_layer(layer, hidden_states, attention_mask)
        named = {name.split(".", 2)[2]: value for name, value in acts.items()}
        return {**named, "resid_post": acts.last_hidden_state}  # what the layer returns, not a hook's reading

    return fn


@reads_only
def hf_model(model) -> Callable:
    """A model factory: HF's `BertModel` itself, read for its hidden states."""

    def fn(input_ids, attention_mask, token_type_ids):
        return model(
            input_ids=input_ids,
            attention_mask=attention_mask,
            **types_given(token_type_ids),  # none for DistilBERT
            output_hidden_states=True,
            return_dict=True,
        )

    return fn


def candidate_at(kind: str, path: str) -> LayerCandidate | ModelCandidate:
    """The candidate of `kind` ("layer" or "model") whose factory is at the import path ``module:name``
    (`load_factory`): the one place a user's factory becomes a candidate (the CLI, the plugin)."""
    return (LayerCandidate if kind == "layer" else ModelCandidate)(load_factory(path), path)


HF_LAYER = LayerCandidate(hf_layer, "HF's BertLayer")
HF_MODEL = ModelCandidate(hf_model, "HF's BertModel")
HF_LAYER.own = HF_MODEL.own = True
