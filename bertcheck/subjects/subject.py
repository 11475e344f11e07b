"""A loaded BERT under test: its HF model in each dtype and device, its reference, and one observation per example."""

from __future__ import annotations

import copy
from collections import OrderedDict
from collections.abc import Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import torch

from bertcheck.subjects._compat import set_attention
from bertcheck.subjects.capture import Activations
from bertcheck.inputs.cases import Case
from bertcheck.subjects.memory import note_input
from bertcheck.subjects.models import ModelSource, load_model, resolve
from bertcheck.spec.reference import ReferenceBert
from bertcheck.spec.family import of_config, spec_config


class ForwardError(RuntimeError):
    """The model under test crashed on an input: which model, which input, what it raised."""


# (wider, narrower): every value of the narrower dtype is a value of the wider one.
_EXACT_WIDENINGS = {
    (torch.float64, torch.float32),
    (torch.float64, torch.float16),
    (torch.float64, torch.bfloat16),
    (torch.float32, torch.float16),
    (torch.float32, torch.bfloat16),
}


def _holds_exactly(dtype: torch.dtype, loaded: torch.dtype) -> bool:
    return dtype == loaded or (dtype, loaded) in _EXACT_WIDENINGS


def _converted_copy(model, dtype: torch.dtype, device: str):
    """A copy of `model` in `dtype` on `device`, its parameters converted straight into place (a deep copy
    first would hold a second full-precision model for a moment)."""
    converted = {
        id(p): torch.nn.Parameter(p.detach().to(dtype=dtype, device=device), requires_grad=p.requires_grad)
        for p in model.parameters()
    }
    return copy.deepcopy(model, memo=converted).to(dtype=dtype, device=device).eval()


@dataclass
class Observation:
    """What one example produced: the encoded inputs and every activation of one hooked forward."""

    case: Case
    model_name: str  # the model's, for messages
    inputs: dict[str, torch.Tensor]
    acts: Activations

    @property
    def real(self) -> torch.Tensor:
        """(B, T) bools: real tokens. Padded positions are never compared."""
        return self.inputs["attention_mask"].bool()


_LOADED: dict[str, "Bert"] = {}  # model name -> Bert: one load per process, least recently asked for first
# The share of a worker's memory budget the models it holds may fill (their copies in other dtypes
# included) before loading another drops the least recently used: both default models in float64 hold
# ~1.0 GiB, under it; RoBERTa-base in float64 and any second base-size model do not (`BERTCHECK_FAMILY=all`).
MODELS_SHARE = 0.6


def every_loaded() -> list["Bert"]:
    """Every `Bert` loaded through `Bert.once` in this process."""
    return list(_LOADED.values())


def _make_room(kept: str) -> None:
    """Drop the least recently used models but `kept` while the models held pass `MODELS_SHARE` of the
    worker's budget: a run over many base-size models (the whole family) keeps to the budget, and
    bertcheck's scheduling (`bertcheck.run.scheduling`) keeps a worker on one model while it has work,
    so a dropped model is seldom loaded again."""
    from bertcheck.subjects import memory

    try:
        limit = MODELS_SHARE * memory.budget_gib() * 2**30
    except ValueError:  # a bad BERTCHECK_WORKER_MEMORY: the plugin says so; here, the default
        limit = MODELS_SHARE * memory.DEFAULT_BUDGET_GIB * 2**30
    dropped = False
    while len(_LOADED) > 1 and sum(bert.held_bytes() for bert in _LOADED.values()) > limit:
        _LOADED.pop(next(name for name in _LOADED if name != kept)).release()
        dropped = True
    if dropped:
        import gc

        gc.collect()
        memory.trim()


class Bert:
    """One model under test. Load once per process; dtype and device copies are made on first use."""

    def __init__(self, model_name: str, model, tokenizer, notes: Sequence[str] = (), source: ModelSource | None = None):
        self.model_name = model_name  # as given to --bert-model: what every message and reproduce line names
        self.source = source  # where it was loaded from (None: built in memory, by a test)
        self.config = spec_config(model.config)  # BERT's field names whatever the member (DistilBERT's dim, ...)
        self.tokenizer = tokenizer
        self.notes = list(notes)  # what the audit said of the checkpoint: told to the user, never hidden
        self.member = of_config(self.config)  # which of BERT's family (`bertcheck.spec.family`)
        # The longest input: 512 tokens, or what the position table holds (RoBERTa's 514 rows hold 512).
        used = self.member.positions_used(self.config.max_position_embeddings, getattr(self.config, "pad_token_id", 0))
        self.max_length = min(512, used)
        # Relative position scores make a layer see token order: permutation properties do not apply.
        self.relative_positions = (getattr(self.config, "position_embedding_type", None) or "absolute") != "absolute"
        self._loaded_dtype = next(model.parameters()).dtype
        self._base_key = (self._loaded_dtype, "cpu")  # the loaded model, in the dtype it is in now
        self._models = {self._base_key: model}  # (dtype, device) -> HF model: the loaded one and copies
        self._references = {}
        self._undropped = {}
        self._cache_dir: Path | None = None  # where `load` found a converted checkpoint (`reload` again)
        # Called with (name, (dtype, device)) when a copy is dropped: caches built from it (a candidate's
        # builds) forget it too, so its tensors are freed.
        self.on_drop: list = []
        self._lent: set = set()  # (dtype, device) of the private copies handed out (`private_copy`)
        # Whether the read-only properties may share one forward's results per input (`one_forward.observed`):
        # the pytest plugin's models, which no property changes. The results, by input, where they do.
        self.shares_observations = False
        self.observations: OrderedDict = OrderedDict()

    @property
    def spec(self) -> str:
        """The model's name: `model_name`'s name in bertcheck 0.1, kept until 0.2 ("spec" is the architecture now)."""
        return self.model_name

    @classmethod
    def load(cls, model_name: str | ModelSource, cache_dir: Path | None = None) -> "Bert":
        source = model_name if isinstance(model_name, ModelSource) else resolve(model_name)
        model, tokenizer, notes = load_model(source, cache_dir)
        # config.json's audit (a float16 checkpoint that transformers 4.x upcasts on load says so only there)
        # and the loaded model's, each said once.
        bert = cls(source.model_name, model, tokenizer, list(dict.fromkeys([*source.notes, *notes])), source)
        bert._cache_dir = cache_dir
        return bert

    def reload(self) -> None:
        """The model as loaded again, every copy and whatever shared their tensors dropped: after a
        candidate changed the model it had promised only to read (`bertcheck.subjects.candidate.reads_only`).
        A model built in memory (a test's) has nothing to load from and stays as it is."""
        if self.source is None:
            return
        model, _, _ = load_model(self.source, self._cache_dir)
        for key in list(self._models):
            self._drop(key)
        self._loaded_dtype = next(model.parameters()).dtype
        self._base_key = (self._loaded_dtype, "cpu")
        self._models = {self._base_key: model}
        self.observations.clear()  # results on the changed model (`one_forward.observed`)

    @classmethod
    def once(cls, model_name: str | ModelSource, cache_dir: Path | None = None) -> "Bert":
        """The `Bert` for `model_name`, loaded once per process and shared (the pytest fixtures, the API)."""
        key = model_name.model_name if isinstance(model_name, ModelSource) else model_name
        if key in _LOADED:
            _LOADED[key] = _LOADED.pop(key)  # the most recently used, last
            return _LOADED[key]
        _LOADED[key] = cls.load(model_name, cache_dir)
        _make_room(key)
        return _LOADED[key]

    def release(self) -> None:
        """Drop every copy of the model, the loaded one too, with whatever shares their tensors (a
        candidate's builds, `on_drop`), and the results by input: a model `Bert.once` let go of to make
        room. Using this `Bert` afterwards is an error; `Bert.once` loads the model again."""
        self.release_copies()
        self._drop(self._base_key)
        self._references.clear()
        self.observations.clear()

    def held_bytes(self) -> int:
        """The bytes of the tensors this `Bert` holds: the loaded model and its copies (shared storage once)."""
        seen, total = set(), 0
        for model in self._models.values():
            for tensor in (*model.parameters(), *model.buffers()):
                storage = tensor.untyped_storage()
                if storage.data_ptr() not in seen:
                    seen.add(storage.data_ptr())
                    total += storage.nbytes()
        return total

    def model(self, dtype: torch.dtype = torch.float32, device: str = "cpu"):
        """The HF model in `dtype` on `device`, made on first use; a worker holds at most two.

        - The loaded model itself, converted *in place* to any dtype that holds the loaded values
          exactly (float32 weights to float64 and back: exact both ways), so float64 costs no second
          copy (bert-base: 0.4 GB in float32 beside 0.9 GB in float64 was 1.3 GB).
        - One copy per device for anything else (bfloat16 on the CPU, every dtype on CUDA): asking
          for another drops the last.

        Whatever shared a dropped or converted model's tensors (its reference, dropout twin, a
        candidate's builds) is dropped with it (`on_drop`). Never hold a model across a call that
        may ask for another dtype: the sharded properties ask for one dtype per test item, so a
        conversion (~0.3 s for bert-base) happens per item, not per example."""
        key = (dtype, str(device))
        if key in self._models:
            return self._models[key]
        base = self._models[self._base_key]
        if key[1] == "cpu" and _holds_exactly(dtype, self._loaded_dtype):
            self._drop(self._base_key)
            self._base_key = key
            self._models[key] = base.to(dtype=dtype)
        else:
            for other in [k for k in self._models if k[1] == key[1] and k != self._base_key]:
                self._drop(other)
            self._models[key] = _converted_copy(base, dtype, device)
        if _LOADED.get(self.model_name) is self:
            # A conversion grows what the worker holds as a load does (a base model in float64: 0.4 GB
            # more): held to the models' share then too, not only when the next model loads. (It did not
            # remove the 2.04-2.21 GiB peaks of a family run's first input-form items: README, "Running
            # the family".)
            _make_room(self.model_name)
        return self._models[key]

    def converts_in_place(self, dtype: torch.dtype, device: str = "cpu") -> bool:
        """Whether `model(dtype, device)` is the loaded model itself, converted in place (no copy)."""
        return str(device) == "cpu" and _holds_exactly(dtype, self._loaded_dtype)

    def private_copy(self, dtype: torch.dtype, device: str = "cpu"):
        """A copy of the model in `dtype` on `device` for a candidate factory to keep and change, made
        straight from the model as loaded (converted back in place first, exactly, if it is not). Where
        `model(dtype)` would be the loaded model converted in place, ask for this instead of copying
        that: a float64 copy of bert-base beside the model in float32 is 1.3 GB, beside the model
        converted to float64 1.8 GB, which took a worker past its 2 GiB (the reference then reads
        float32 weights, converting each layer's as it runs). What was built over the copy is
        forgotten with the other copies (`release_copies`)."""
        base = self.model(self._loaded_dtype)
        self._lent.add((dtype, str(device)))
        return _converted_copy(base, dtype, device)

    def release_copies(self) -> None:
        """Drop every copy but the loaded model: between test items, where the next may need none
        (a bfloat16 bert-base is 0.2 GB a worker would otherwise carry into its float64 items)."""
        for key in [k for k in self._models if k != self._base_key]:
            self._drop(key)
        for key in self._lent:
            for forget in self.on_drop:
                forget(self.model_name, key)
        self._lent.clear()

    def _drop(self, key: tuple) -> None:
        """Forget the model `key` and everything that shares its tensors."""
        del self._models[key]
        self._references.pop(key, None)
        self._undropped.pop(key, None)
        for forget in self.on_drop:
            forget(self.model_name, key)

    @contextmanager
    def attention(self, implementation: str | None, dtype: torch.dtype = torch.float32, device: str = "cpu"):
        """The HF model in `dtype` on `device`, running attention `implementation` ("eager", "sdpa"; None:
        its own) inside the block and its own implementation again after it: switched in place, not
        copied (a copy per implementation was another 0.4-0.9 GB of bert-base per dtype)."""
        model = self.model(dtype, device)
        own = getattr(model.config, "_attn_implementation", None) or "eager"
        if implementation is None or implementation == own:
            yield model
            return
        set_attention(model, implementation)
        try:
            yield model
        finally:
            set_attention(model, own)

    def without_dropout(self, dtype: torch.dtype = torch.float32, device: str = "cpu"):
        """A twin of the model in `dtype` on `device` with every dropout probability 0, sharing its
        weights (no copy) and everything else about it. Releases keep their dropout in different places:
        `nn.Dropout` modules, a float attribute (the SDPA attention of transformers 4.41-4.57 reads
        `dropout_prob`), or the config at forward time; the twin zeroes all three, so no property
        depends on how one release wires its dropout."""
        key = (dtype, str(device))
        if key not in self._undropped:
            base = self.model(dtype, device)
            shared = {id(t): t for t in (*base.parameters(), *base.buffers())}
            twin = copy.deepcopy(base, memo=shared)  # modules and config copied, tensors shared
            # BERT's names, and DistilBERT's own (`dropout`, `attention_dropout`)
            for name in (
                "hidden_dropout_prob",
                "attention_probs_dropout_prob",
                "classifier_dropout",
                "dropout",
                "attention_dropout",
            ):
                if getattr(twin.config, name, None) is not None:
                    setattr(twin.config, name, 0.0)
            for module in twin.modules():
                if isinstance(module, torch.nn.Dropout):
                    module.p = 0.0
                for attr, value in list(vars(module).items()):
                    if "dropout" in attr.lower() and isinstance(value, float):
                        setattr(module, attr, 0.0)
            self._undropped[key] = twin.eval()
        return self._undropped[key]

    @property
    def takes_pairs(self) -> bool:
        """Sentence pairs need token types 0 and 1: a model with one token type takes none."""
        return self.config.type_vocab_size >= 2

    @property
    def lacks_pooler(self) -> str | None:
        """Why this model has no pooler to check (None when it has one): ELECTRA's has none, nor has
        `BertModel(add_pooling_layer=False)`; a checkpoint without pooler weights has a random one."""
        from bertcheck.subjects.audit import NO_POOLER

        held = self._models[self._base_key]  # not `model()`, which may convert the held model's dtype
        if getattr(held, "pooler", None) is None:
            return f"{self.model_name} has no pooler ({type(held).__name__} without one): nothing to check"
        if NO_POOLER in self.notes:
            return f"{self.model_name}: {NO_POOLER}"
        return None

    def unsupported(self, case: Case) -> str | None:
        """Why this model cannot take `case` as a BERT input (None when it can)."""
        if case.pairs and not self.takes_pairs:
            return f"{self.model_name} has type_vocab_size={self.config.type_vocab_size}: it takes no sentence pairs"
        return None

    def reference(self, dtype: torch.dtype = torch.float32, device: str = "cpu") -> ReferenceBert:
        """The reference in `dtype` on `device`. It shares the tensors of the HF model in that dtype when
        that copy is held; otherwise (the float64 reference beside a bfloat16 model) it reads the loaded
        model's tensors and converts each layer's weights as it runs, holding no copy."""
        key = (dtype, str(device))
        if key not in self._references:
            if key in self._models:
                self._references[key] = ReferenceBert.from_hf(self._models[key], dtype=dtype, device=device)
            else:
                return ReferenceBert.from_hf(self._models[self._base_key], dtype=dtype, device=device, lazy=True)
        return self._references[key]

    def encode(self, case: Case, pad_to: int | None = None) -> dict[str, torch.Tensor]:
        """The case's ids, mask and token types as this model takes them (`Case.encode`; `pad_to` as there)."""
        why = self.unsupported(case)
        if why:
            raise ValueError(why)
        inputs = case.encode(self.tokenizer, self.max_length, pad_to=pad_to)
        if not self.member.token_types:  # DistilBERT's forward takes no token_type_ids
            del inputs["token_type_ids"]
        note_input(*inputs["input_ids"].shape, case.dtype)
        return inputs
