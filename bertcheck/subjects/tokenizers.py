"""Ids for a family member whose tokenizer does not ship offline: BERT's WordPiece, renumbered.

No RoBERTa, XLM-R or CamemBERT tokenizer is installed with bertcheck, and hubs are never reached. A random
model of those members needs ids within its vocabulary in its special-token layout (RoBERTa's `<s>` 0,
`<pad>` 1, `</s>` 2, `<unk>` 3), and the properties keep readable text: so the drawn sentences go through
BERT's WordPiece and its four special tokens take the member's numbers. Every other WordPiece id keeps
its number (all below 30,522, within every member's vocabulary); WordPiece's `[unused*]` rows, which no
text encodes to, would become `<unk>`. The random weights give the numbers no meaning, so the
model sees exactly the ids a member's own tokenizer could have produced.
"""

from __future__ import annotations

import re

import torch

from bertcheck.spec.family import MEMBERS, Member

_BRACKETED = re.compile(r"\[(PAD|UNK|CLS|SEP|MASK|unused\d+)\]")
_NAMES = {"cls": "<s>", "sep": "</s>", "pad": "<pad>", "unk": "<unk>"}


class Renumbered:
    """A BERT tokenizer (`BertTokenizerFast`) whose outputs speak `member`'s special-token ids."""

    def __init__(self, inner, member: Member):
        self.inner, self.member = inner, member
        bert, ours = dict(MEMBERS["bert"].specials), dict(member.specials)
        table = torch.arange(max(len(inner), max(ours.values()) + 1), device="cpu")  # tokenizers give CPU ids
        for token, i in inner.get_vocab().items():  # [PAD], [unused*], [UNK], [CLS], [SEP], [MASK]: none kept
            if _BRACKETED.fullmatch(token):
                table[i] = ours["unk"]
        for name in bert:  # WordPiece's special id -> the member's
            table[bert[name]] = ours[name]
        self._table = table
        self._names = {ours[name]: _NAMES[name] for name in ours}
        self.pad_token_id = ours["pad"]

    def __len__(self) -> int:
        return len(self.inner)

    def __call__(self, *texts, **options):
        encoded = self.inner(*texts, **options)
        ids = encoded["input_ids"]
        ids = ids if isinstance(ids, torch.Tensor) else torch.tensor(ids, device="cpu")
        encoded["input_ids"] = self._table[ids]
        return encoded

    def convert_ids_to_tokens(self, ids) -> list[str]:
        # Every special id is the member's and named here; every other id is WordPiece's own.
        return [self._names.get(i) or self.inner.convert_ids_to_tokens(i) for i in ids]

    def __repr__(self) -> str:
        return f"Renumbered(BERT WordPiece in {self.member.model_type}'s special-token ids)"
