"""A loaded BERT under test: its HF model in each dtype and device, its reference, and one observation per example."""

from __future__ import annotations

import copy
from dataclasses import dataclass
from pathlib import Path

import torch

from bertcheck._compat import set_attention
from bertcheck.capture import Activations, capture
from bertcheck.cases import Case
from bertcheck.models import ModelSource, load_model, resolve
from bertcheck.reference import ReferenceBert


class ForwardError(RuntimeError):
    """The model under test crashed on an input: which model, which input, what it raised."""


@dataclass
class Observation:
    """What one example produced: the encoded inputs and every activation of one hooked forward."""

    case: Case
    model: str  # the spec, for messages
    inputs: dict[str, torch.Tensor]
    acts: Activations | None  # None for properties that compare whole forwards, not activations

    @property
    def real(self) -> torch.Tensor:
        """(B, T) bools: real tokens. Padded positions are never compared."""
        return self.inputs["attention_mask"].bool()


_LOADED: dict[str, "Bert"] = {}  # spec -> Bert: one load per process, whatever asks first


class Bert:
    """One model under test. Load once per process; dtype and device copies are made on first use."""

    def __init__(self, name: str, model, tokenizer):
        self.name = name
        self.config = model.config
        self.tokenizer = tokenizer
        self.max_length = min(512, self.config.max_position_embeddings)
        self._models = {(next(model.parameters()).dtype, "cpu"): model}
        self._references = {}

    @classmethod
    def load(cls, spec: str | ModelSource, cache_dir: Path | None = None) -> "Bert":
        source = spec if isinstance(spec, ModelSource) else resolve(spec)
        model, tokenizer = load_model(source, cache_dir)
        return cls(source.spec, model, tokenizer)

    @classmethod
    def once(cls, spec: str | ModelSource, cache_dir: Path | None = None) -> "Bert":
        """The `Bert` for `spec`, loaded once per process and shared (the pytest fixtures, the API)."""
        key = spec.spec if isinstance(spec, ModelSource) else spec
        if key not in _LOADED:
            _LOADED[key] = cls.load(spec, cache_dir)
        return _LOADED[key]

    def model(self, dtype: torch.dtype = torch.float32, device: str = "cpu", attention: str | None = None):
        """The HF model in `dtype` on `device`; `attention` names an implementation ("eager", "sdpa"),
        None keeps the model's own. Copies are made once and kept."""
        base = next(iter(self._models.values()))
        if attention == getattr(base.config, "_attn_implementation", "eager"):
            attention = None  # already the model's own: no second copy of the weights
        key = (dtype, str(device)) + ((attention,) if attention else ())
        if key not in self._models:
            model = copy.deepcopy(base).to(dtype=dtype, device=device).eval()
            if attention:
                set_attention(model, attention)
            self._models[key] = model
        return self._models[key]

    def reference(self, dtype: torch.dtype = torch.float32, device: str = "cpu") -> ReferenceBert:
        key = (dtype, str(device))
        if key not in self._references:
            self._references[key] = ReferenceBert.from_hf(self.model(dtype, device), dtype=dtype, device=device)
        return self._references[key]

    def encode(self, case: Case) -> dict[str, torch.Tensor]:
        return case.encode(self.tokenizer, self.max_length)

    def observe(self, case: Case) -> Observation:
        """One hooked forward: every activation the checks need, shared by all of them."""
        inputs = self.encode(case)
        try:
            acts = capture(self.model(case.dtype, case.device), **inputs)
        except Exception as err:  # noqa: BLE001 - any crash of the model under test is reported the same way
            lines = [f"the forward of {self.name} raised {type(err).__name__}: {err}", *case.describe(self.name)]
            raise ForwardError("\n  ".join(lines)) from err
        return Observation(case=case, model=self.name, inputs=inputs, acts=acts)
