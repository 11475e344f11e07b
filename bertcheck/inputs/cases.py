"""The generated examples, each with how to describe it and reproduce it with one command: `Case` (a batch
of sentences for a model), `LayerCase` (hidden states for one layer) and `CandidateCase` (either, handed
to a user's reimplementation)."""

from __future__ import annotations

import json
import shlex
from dataclasses import asdict, dataclass
from typing import Protocol

import torch

INLINE_TEXTS = 2000  # characters of texts JSON a reproduce line carries as an argument


def _dtype(dtype: torch.dtype) -> str:
    return str(dtype).removeprefix("torch.")


class Example(Protocol):
    """What every generated example gives a failure report: its input in words, and one command that
    reruns the property on exactly it. `model_name` is the model as named (as for ``--bert-model``)."""

    dtype: torch.dtype
    device: str

    def describe(self, model_name: str) -> list[str]: ...

    def reproduce(self, model_name: str, key: str) -> str: ...


@dataclass(frozen=True)
class Case:
    """A batch of sentences (or of sentence pairs) to run in one dtype on one device.

    A batch holds either sentences or pairs, not both: the tokenizer encodes pairs together.
    """

    texts: tuple
    dtype: torch.dtype = torch.float32
    device: str = "cpu"

    def __post_init__(self):
        if not self.texts:
            raise ValueError("a Case needs at least one text")
        kinds = {isinstance(t, tuple) for t in self.texts}
        if len(kinds) > 1:
            raise ValueError("a Case holds either sentences or sentence pairs, not both")
        for t in self.texts:
            if isinstance(t, tuple) and (len(t) != 2 or not all(isinstance(s, str) for s in t)):
                raise ValueError(f"a sentence pair is two strings, got {t!r}")
            if not isinstance(t, (str, tuple)):
                raise ValueError(f"a text is a str or a pair of str, got {t!r}")
        for i, t in enumerate(self.texts):
            for s in t if isinstance(t, tuple) else (t,):
                try:
                    s.encode("utf-8")
                except UnicodeEncodeError as err:
                    raise ValueError(
                        f"text {i} holds a lone surrogate {s[err.start]!r} at position {err.start}: "
                        f"not Unicode text, so no tokenizer can encode it"
                    ) from None

    @property
    def pairs(self) -> bool:
        return isinstance(self.texts[0], tuple)

    @property
    def batch(self) -> int:
        return len(self.texts)

    def encode(self, tokenizer, max_length: int, pad_to: int | None = None) -> dict[str, torch.Tensor]:
        """Token ids, attention mask and token types on this case's device, padded to the longest (or, as
        `padding="max_length"` does, to `pad_to` tokens; truncated at `max_length` either way)."""
        texts = ([a for a, _ in self.texts], [b for _, b in self.texts]) if self.pairs else (list(self.texts),)
        padding = dict(padding=True) if pad_to is None else dict(padding="max_length")
        limit = max_length if pad_to is None else min(pad_to, max_length)
        enc = tokenizer(*texts, **padding, truncation=True, max_length=limit, return_tensors="pt")
        keys = ("input_ids", "attention_mask", "token_type_ids")
        return {key: enc[key].to(self.device) for key in keys}

    def texts_json(self) -> str:
        # JSON with ASCII escapes survives every character Hypothesis draws (NUL, newlines, emoji) on a
        # command line, where plain shell quoting cannot carry a NUL.
        return json.dumps([list(t) if isinstance(t, tuple) else t for t in self.texts], ensure_ascii=True)

    def describe(self, model_name: str) -> list[str]:
        shown = [list(t) if isinstance(t, tuple) else t for t in self.texts]
        return [
            f"model: {model_name}   dtype: {_dtype(self.dtype)}   device: {self.device}   batch: {self.batch}",
            f"{'sentence pairs' if self.pairs else 'sentences'}: {shown!r}"[:2000],
        ]

    def reproduce(self, model_name: str, key: str) -> str:
        """One shell command that reruns `check` on exactly this input. Texts past `INLINE_TEXTS`
        characters of JSON go through a here-document on stdin (`--texts-file -`): a command line
        argument is limited (128 KiB on Linux), and a screenful of escapes is not readable either."""
        args = [
            "python",
            "-m",
            "bertcheck",
            "check",
            key,
            "--model",
            model_name,
            "--dtype",
            str(self.dtype).removeprefix("torch."),
            "--device",
            self.device,
        ]
        texts = self.texts_json()
        if len(texts) <= INLINE_TEXTS:
            return shlex.join([*args, "--texts", texts])
        # ASCII JSON on one line: it can never be the lone word that ends the here-document.
        return f"{shlex.join([*args, '--texts-file', '-'])} <<'BERTCHECK_TEXTS'\n{texts}\nBERTCHECK_TEXTS"

    @classmethod
    def from_json(cls, texts: str, *, dtype=torch.float32, device="cpu") -> "Case":
        try:
            loaded = json.loads(texts)
        except json.JSONDecodeError as err:
            raise ValueError(f"--texts is not JSON ({err}); give a list such as '[\"a sentence\"]'") from None
        if not isinstance(loaded, list) or not loaded:
            raise ValueError("--texts must be a non-empty JSON list of strings or of [first, second] pairs")
        return cls(tuple(tuple(t) if isinstance(t, list) else t for t in loaded), dtype=dtype, device=device)


SCALES = {"unit": 1.0, "low": 1e-3, "large": 100.0}  # standard deviation of the generated states
# Properties that go through attention draw from these only. A BERT layer's input is a LayerNorm output
# (|x| ~ |gamma|); at std 100, attention logits reach ~1e4, where float32 rounds a logit by ~1e-3 and
# softmax moves by ~0.1%: the comparison would measure softmax conditioning, not correctness (float64
# shows the same at ~2e-11). Large magnitudes go to the LayerNorm and feed-forward properties.
ATTENTION_SCALES = ("unit", "low")


@dataclass(frozen=True)
class LayerCase:
    """Generated input for one layer: (batch, tokens, hidden) states drawn from `seed` at `scale`,
    the last `pad` tokens of every row but the first padded (all of them, `pad == tokens`: rows 1+ fully
    padded, as a batch filled up to a fixed size in serving is)."""

    layer: int
    batch: int
    tokens: int
    pad: int
    scale: str
    seed: int
    dtype: torch.dtype = torch.float32
    device: str = "cpu"

    def __post_init__(self):
        pad_ok = 0 <= self.pad < self.tokens or (self.pad == self.tokens and self.batch >= 2)
        if not (self.layer >= 0 and self.batch >= 1 and self.tokens >= 1 and pad_ok):
            raise ValueError(
                f"need batch >= 1, tokens >= 1, 0 <= pad < tokens (or pad == tokens, rows 1+ fully padded, "
                f"for batch >= 2) and layer >= 0; got layer "
                f"{self.layer}, batch {self.batch}, tokens {self.tokens}, pad {self.pad}"
            )
        if self.scale not in SCALES:
            raise ValueError(f"scale {self.scale!r} is not one of {', '.join(SCALES)}")
        if not 0 <= self.seed < 2**64:  # what torch.Generator.manual_seed takes
            raise ValueError(f"seed {self.seed}: give a whole number from 0 to 2**64 - 1")

    def states(self, hidden_size: int) -> tuple[torch.Tensor, torch.Tensor]:
        gen = torch.Generator().manual_seed(self.seed)
        x = (
            torch.randn(self.batch, self.tokens, hidden_size, generator=gen, dtype=torch.float64, device="cpu")
            * SCALES[self.scale]
        )
        mask = torch.ones(self.batch, self.tokens, dtype=torch.long, device="cpu")
        if self.pad:
            mask[1:, self.tokens - self.pad :] = 0
        return x.to(self.dtype).to(self.device), mask.to(self.device)

    @property
    def texts(self):  # what PropertyFailure shows as the input
        return ()

    def describe(self, model_name: str) -> list[str]:
        return [
            f"model: {model_name}   dtype: {_dtype(self.dtype)}   device: {self.device}   layer: {self.layer}",
            f"hidden states: batch {self.batch}, tokens {self.tokens}, padded {self.pad} (rows 1+"
            f"{': fully padded' if self.pad == self.tokens else ''}), "
            f"std {SCALES[self.scale]:g} ({self.scale}), seed {self.seed}",
        ]

    def reproduce(self, model_name: str, key: str) -> str:
        args = [
            "python",
            "-m",
            "bertcheck",
            "check-layer",
            key,
            "--model",
            model_name,
            "--layer",
            str(self.layer),
            "--batch",
            str(self.batch),
            "--tokens",
            str(self.tokens),
            "--pad",
            str(self.pad),
            "--scale",
            self.scale,
            "--seed",
            str(self.seed),
            "--dtype",
            str(self.dtype).removeprefix("torch."),
            "--device",
            self.device,
        ]
        return shlex.join(args)


@dataclass(frozen=True)
class CandidateCase:
    """One generated input for a candidate, with what a failure needs to name it and rerun it."""

    inner: LayerCase | Case
    impl: str
    kind: str  # "layer" or "model"

    @property
    def texts(self):
        return self.inner.texts

    @property
    def dtype(self) -> torch.dtype:
        return self.inner.dtype

    @property
    def device(self) -> str:
        return self.inner.device

    def describe(self, model_name: str) -> list[str]:
        return [f"candidate: {self.impl} ({self.kind} factory)", *self.inner.describe(model_name)]

    def example_json(self) -> str:
        return example_json(self.inner)

    def reproduce(self, model_name: str, key: str) -> str:
        option = "--impl" if self.kind == "layer" else "--model-impl"
        args = [
            "python",
            "-m",
            "bertcheck",
            "verify",
            option,
            self.impl,
            "--model",
            model_name,
            "--property",
            key,
            "--example",
            self.example_json(),
        ]
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
        return LayerCase(**fields, dtype=dtype, device=device)
    except (ValueError, TypeError, KeyError, AttributeError) as err:
        raise ValueError(f"--example {text!r} is not a {kind} example ({err})") from None
