"""The BERT family: which `model_type`s share BERT's layer, and what each computes differently.

The layer body (attention, both add & norms, the feed-forward) is the one in `reference`: RoBERTa's layer
*is* `BertLayer` in transformers 5.x (`RobertaLayer(BertLayer)`), and a "Copied from BertLayer" copy in
4.x, where a regression can land in one copy and not the others. What differs is said here, once per
member, and read by the reference (positions), the loader (the transformers class) and the inputs (the
special-token layout):

- **BERT**: positions 0 .. T-1; `[CLS]`, `[SEP]`, `[PAD]` as its WordPiece vocab numbers them.
- **ELECTRA**: BERT's positions and special tokens (its vocab is BERT's WordPiece), no pooler, and
  embeddings at `embedding_size`: where that is not the hidden size (ELECTRA-small: 128 -> 256), a dense
  `embeddings_project` maps the embedding LayerNorm's output (`embed.ln_out`) to the hidden size, and
  that is `embed.out`, what the encoder reads and `hidden_states[0]`.
- **ERNIE** (Baidu's, `ErnieModel`): BERT's positions and special tokens, and with `use_task_id` a
  task-type embedding (`embeddings.task_type_embeddings`, `embed.task_types`) added after the positions,
  row 0 where the call gives no `task_type_ids`, as transformers does.
- **RoBERTa, XLM-RoBERTa, CamemBERT, Data2VecText**: positions count real tokens only, from
  `padding_idx + 1`, and every padding token sits at `padding_idx` (`pad_token_id`, the position table's
  padding row): ``padding_idx + cumsum(ids != pad) * (ids != pad)``, transformers'
  `create_position_ids_from_input_ids`. Called with `inputs_embeds` there are no ids to count, and
  positions run `padding_idx + 1 ..` for every token. So `max_position_embeddings` (514) holds
  512 real positions. Special tokens: `<s>` 0, `<pad>` 1, `</s>` 2, `<unk>` 3.

The members not here (DistilBERT, ALBERT) are refused by name until the reference follows them.
"""

from __future__ import annotations

from dataclasses import dataclass

from bertcheck.spec import names

SEQUENTIAL = "sequential"  # BERT: position i is row i
AFTER_PADDING = "after padding"  # RoBERTa: real tokens from padding_idx + 1, padding at padding_idx


@dataclass(frozen=True)
class Member:
    """One `model_type` the reference follows."""

    model_type: str  # config.json's
    model_class: str  # the transformers class that loads it (without a head)
    positions: str  # SEQUENTIAL or AFTER_PADDING
    # Its special tokens' ids: where bertcheck draws ids for a model with no tokenizer of its own, it
    # tokenizes with BERT's WordPiece and renumbers these four (every other id keeps its number).
    specials: tuple[tuple[str, int], ...]
    # The module that maps embeddings at `embedding_size` to the hidden size, where the two differ.
    projection: str | None = None
    # The config flag that adds task-type embeddings (ERNIE's `use_task_id`), where the member has them.
    task_types: str | None = None

    def adds_task_types(self, config) -> bool:
        """Whether `config`'s embeddings add a task-type embedding (ERNIE with `use_task_id`)."""
        return self.task_types is not None and bool(getattr(config, self.task_types, False))

    def projects(self, config) -> bool:
        """Whether `config`'s embeddings run at another width than its layers (`projection` then maps them)."""
        size = getattr(config, "embedding_size", None)
        return self.projection is not None and size is not None and size != config.hidden_size

    def position_ids(self, input_ids, padding_idx: int, *, embeds: bool = False):
        """(B, T) position ids the member's embeddings use for `input_ids` (B, T). `embeds`: the model was
        called with `inputs_embeds`, so it had no ids to find padding in."""
        import torch

        B, T = input_ids.shape
        if self.positions == SEQUENTIAL:
            return torch.arange(T, device=input_ids.device).expand(B, T)
        if embeds:
            return torch.arange(padding_idx + 1, padding_idx + 1 + T, device=input_ids.device).expand(B, T)
        real = input_ids.ne(padding_idx).long()
        return torch.cumsum(real, dim=1) * real + padding_idx

    def positions_used(self, max_position_embeddings: int, padding_idx: int | None) -> int:
        """How many tokens fit the position table: RoBERTa's first padding_idx + 1 rows are never a real token's."""
        if self.positions == AFTER_PADDING:
            return max_position_embeddings - (padding_idx or 0) - 1
        return max_position_embeddings


_BERT_SPECIALS = (("cls", 101), ("sep", 102), ("pad", 0), ("unk", 100))
_ROBERTA_SPECIALS = (("cls", 0), ("sep", 2), ("pad", 1), ("unk", 3))

MEMBERS = {
    m.model_type: m
    for m in (
        Member("bert", "BertModel", SEQUENTIAL, _BERT_SPECIALS),
        Member("electra", "ElectraModel", SEQUENTIAL, _BERT_SPECIALS, projection="embeddings_project"),
        Member("ernie", "ErnieModel", SEQUENTIAL, _BERT_SPECIALS, task_types="use_task_id"),
        Member("roberta", "RobertaModel", AFTER_PADDING, _ROBERTA_SPECIALS),
        Member("xlm-roberta", "XLMRobertaModel", AFTER_PADDING, _ROBERTA_SPECIALS),
        Member("camembert", "CamembertModel", AFTER_PADDING, _ROBERTA_SPECIALS),
        Member("data2vec-text", "Data2VecTextModel", AFTER_PADDING, _ROBERTA_SPECIALS),
    )
}
# Family members the reference does not follow yet, and what it would need: refused by name.
NOT_YET = {
    "distilbert": "its own module names and config keys (q_lin, sa_layer_norm, dim, n_heads), no token types",
    "albert": "factorized embeddings and one layer shared across groups",
    "xlm-roberta-xl": "pre-LN layers (a LayerNorm before each sublayer)",
    "mpnet": "relative attention of its own, which is not BERT's",
}


def projects(config) -> bool:
    """Whether a loaded config's embeddings are projected to the hidden size (ELECTRA-small's)."""
    return of_config(config).projects(config)


def adds_task_types(config) -> bool:
    """Whether a loaded config's embeddings add task-type embeddings (ERNIE's `use_task_id`)."""
    return of_config(config).adds_task_types(config)


def embed_names(config) -> tuple[str, ...]:
    """The embeddings' activation names of a loaded config, in forward order (`bertcheck.spec.names`)."""
    return names.embed_names(projects(config), adds_task_types(config))


def embed_hooks(config) -> dict:
    """Where each of `embed_names(config)` is read on the HF model."""
    return names.embed_hooks(projects(config), adds_task_types(config))


def embedding_width(config) -> int:
    """The width the embeddings run at: `embedding_size` where the member projects, else the hidden size."""
    return config.embedding_size if projects(config) else config.hidden_size


def member(model_type: str | None) -> Member:
    """The member a config's `model_type` names (None: BERT, as old BERT configs omit it)."""
    return MEMBERS[model_type or "bert"]


def of_config(config) -> Member:
    """The member of a loaded config (a `PretrainedConfig`)."""
    return member(getattr(config, "model_type", None) or "bert")
