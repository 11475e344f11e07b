"""One generated example: the texts, the dtype and the device, and how to reproduce it with one command."""

from __future__ import annotations

import json
import shlex
from dataclasses import dataclass

import torch

INLINE_TEXTS = 2000  # characters of texts JSON a reproduce line carries as an argument


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
                    raise ValueError(f"text {i} holds a lone surrogate {s[err.start]!r} at position {err.start}: "
                                     f"not Unicode text, so no tokenizer can encode it") from None  # fmt: skip

    @property
    def pairs(self) -> bool:
        return isinstance(self.texts[0], tuple)

    @property
    def batch(self) -> int:
        return len(self.texts)

    def encode(self, tokenizer, max_length: int) -> dict[str, torch.Tensor]:
        """Token ids, attention mask and token types on this case's device, padded to the longest."""
        if self.pairs:
            first, second = [a for a, _ in self.texts], [b for _, b in self.texts]
            enc = tokenizer(first, second, padding=True, truncation=True, max_length=max_length, return_tensors="pt")
        else:
            enc = tokenizer(list(self.texts), padding=True, truncation=True, max_length=max_length, return_tensors="pt")
        keys = ("input_ids", "attention_mask", "token_type_ids")
        return {key: enc[key].to(self.device) for key in keys}

    def texts_json(self) -> str:
        # JSON with ASCII escapes survives every character Hypothesis draws (NUL, newlines, emoji) on a
        # command line, where plain shell quoting cannot carry a NUL.
        return json.dumps([list(t) if isinstance(t, tuple) else t for t in self.texts], ensure_ascii=True)

    def describe(self, model: str) -> list[str]:
        shown = [list(t) if isinstance(t, tuple) else t for t in self.texts]
        return [
            f"model: {model}   dtype: {str(self.dtype).removeprefix('torch.')}   device: {self.device}   batch: {self.batch}",
            f"{'sentence pairs' if self.pairs else 'sentences'}: {shown!r}"[:2000],
        ]

    def reproduce(self, model: str, check: str) -> str:
        """One shell command that reruns `check` on exactly this input. Texts past `INLINE_TEXTS`
        characters of JSON go through a here-document on stdin (`--texts-file -`): a command line
        argument is limited (128 KiB on Linux), and a screenful of escapes is not readable either."""
        args = [
            "python", "-m", "bertcheck", "check", check,
            "--model", model,
            "--dtype", str(self.dtype).removeprefix("torch."),
            "--device", self.device,
        ]  # fmt: skip
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
