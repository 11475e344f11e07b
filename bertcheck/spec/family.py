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
- **ALBERT**: BERT's positions and token types, its embeddings at `embedding_size` always mapped to the
  hidden size (`encoder.embedding_hidden_mapping_in`, even where the two widths are equal), and its layers
  kept under other names and shared: layer i runs the one layer of group ``i * num_hidden_groups //
  num_hidden_layers`` (`Member.layer_path`), so every layer of a group reads the same weights. Its
  attention holds the first add & norm (`attention.dense`, `attention.LayerNorm`), its feed-forward is
  `ffn` -> `ffn_output`, its second LayerNorm `full_layer_layer_norm`, its pooler a dense (`pooler`)
  then `pooler_activation`. `gelu_new` by default, which the reference has by its formula. Special
  tokens: `<pad>` 0, `<unk>` 1, `[CLS]` 2, `[SEP]` 3. A group of several inner layers
  (`inner_group_num` > 1) gives no hidden state between them, so it is refused by name.
- **DistilBERT**: BERT's positions and special tokens (its vocab is BERT's WordPiece), no token types
  (no `token_type_embeddings`, and its forward takes no `token_type_ids`), no pooler, its layers under
  other names (`transformer.layer.{i}`: `attention.q_lin` .. `out_lin`, `sa_layer_norm`, `ffn.lin1` and
  `ffn.lin2`, `output_layer_norm`) and its config under other keys (`dim`, `n_heads`, `n_layers`,
  `hidden_dim`, `activation`, `dropout`, `attention_dropout`); its LayerNorms' eps is 1e-12 in its code,
  not in its config. No dropout on its attention's output: the residual adds it as it is.
- **RoBERTa, XLM-RoBERTa, CamemBERT, Data2VecText**: positions count real tokens only, from
  `padding_idx + 1`, and every padding token sits at `padding_idx` (`pad_token_id`, the position table's
  padding row): ``padding_idx + cumsum(ids != pad) * (ids != pad)``, transformers'
  `create_position_ids_from_input_ids`. Called with `inputs_embeds` there are no ids to count, and
  positions run `padding_idx + 1 ..` for every token. So `max_position_embeddings` (514) holds
  512 real positions. Special tokens: `<s>` 0, `<pad>` 1, `</s>` 2, `<unk>` 3.

Every name in the rest of bertcheck is BERT's: the reference's weight keys
(``encoder.layer.3.intermediate.dense.weight``), the HF module paths the capture hooks, the surgery the
properties do on a layer. A member that keeps them elsewhere says where once, here (`Member.layers`,
`Member.renamed`, `Member.hooks`), and `weight_key`, `module_path` and `layer_hooks` translate; nothing
else needs to know.

A config of a member with keys of its own is read through `spec_config`, a copy with BERT's field
names added, so every other module reads `config.intermediate_size` whatever the member.
"""

from __future__ import annotations

from dataclasses import dataclass

from bertcheck.spec import names
from bertcheck.spec.names import LAYER_HOOKS, Hook

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
    # The projection runs whatever the widths (ALBERT's `embedding_hidden_mapping_in`), not only where the
    # embeddings are narrower than the layers (ELECTRA's `embeddings_project`).
    always_projects: bool = False
    # Layer i's module path; ``{group}``: layer i runs group `group_of(config, i)`'s weights (ALBERT's sharing).
    layers: str = "encoder.layer.{i}"
    # BERT's module paths (relative to a layer, or to the model) -> the member's, where they differ.
    renamed: tuple[tuple[str, str], ...] = ()
    # Layer activations (`names.LAYER_HOOKS`) read elsewhere than at BERT's module renamed: where the
    # member has no module that returns them (ALBERT's attention returns after its LayerNorm, so z is the
    # input of its output dense).
    hooks: tuple[tuple[str, Hook], ...] = ()
    # The feed-forward without its residual, H -> I -> H: the layer's modules run in this order.
    feed_forward: tuple[str, ...] = ("intermediate", "output.dense")
    # Whether its embeddings add token types and its forward takes `token_type_ids` (DistilBERT's do not).
    token_types: bool = True
    # BERT's config fields it keeps under its own keys (a name) or fixes in its code (a value).
    fields: tuple[tuple[str, object], ...] = ()
    # The sublayer outputs (`attn_out`, `mlp_out`) its residual adds take without dropout in train mode.
    undropped: tuple[str, ...] = ()

    def group_of(self, config, i: int) -> int:
        """The group of shared weights layer `i` runs: transformers' ``int(i / (L / G))``, in integers."""
        if "{group}" not in self.layers:
            return i
        return i * getattr(config, "num_hidden_groups", 1) // config.num_hidden_layers

    def layer_path(self, config, i: int) -> str:
        """Layer `i`'s module path in the HF model (``encoder.layer.3``): one module per layer, or a group's
        shared one."""
        return self.layers.format(i=i, group=self.group_of(config, i))

    def module_path(self, config, i: int | None, relative: str) -> str:
        """The member's module path of BERT's `relative` path inside layer `i` ("" the layer itself), or,
        with `i` None, inside the model (``pooler.dense``)."""
        own = dict(self.renamed).get(relative, relative)
        if i is None:
            return own
        return f"{self.layer_path(config, i)}.{own}" if own else self.layer_path(config, i)

    def weight_key(self, config, key: str) -> str:
        """The member's `state_dict` key of BERT's `key` (``encoder.layer.3.output.dense.weight``)."""
        module, _, leaf = key.rpartition(".")
        if module.startswith("encoder.layer."):
            _, _, i, *relative = module.split(".")
            return f"{self.module_path(config, int(i), '.'.join(relative))}.{leaf}"
        return f"{self.module_path(config, None, module)}.{leaf}"

    def layer_hooks(self) -> dict[str, Hook]:
        """`names.LAYER_HOOKS` at the member's modules, relative to a layer."""
        renamed, own = dict(self.renamed), dict(self.hooks)
        return {
            name: own.get(name) or Hook(renamed.get(hook.module, hook.module), hook.kind)
            for name, hook in LAYER_HOOKS.items()
        }

    def adds_task_types(self, config) -> bool:
        """Whether `config`'s embeddings add a task-type embedding (ERNIE with `use_task_id`)."""
        return self.task_types is not None and bool(getattr(config, self.task_types, False))

    def projects(self, config) -> bool:
        """Whether `config`'s embeddings run at another width than its layers (`projection` then maps them)."""
        size = getattr(config, "embedding_size", None)
        if self.projection is None or size is None:
            return False
        return self.always_projects or size != config.hidden_size

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
_ALBERT_SPECIALS = (("cls", 2), ("sep", 3), ("pad", 0), ("unk", 1))
# DistilBERT's modules and config keys, by BERT's names.
_DISTILBERT_RENAMED = (
    ("attention.self.query", "attention.q_lin"),
    ("attention.self.key", "attention.k_lin"),
    ("attention.self.value", "attention.v_lin"),
    ("attention.output.dense", "attention.out_lin"),
    ("attention.output.LayerNorm", "sa_layer_norm"),
    ("intermediate.dense", "ffn.lin1"),
    ("output.dense", "ffn.lin2"),
    ("output.LayerNorm", "output_layer_norm"),
)
_DISTILBERT_HOOKS = (
    ("z", Hook("attention.out_lin", "pre")),  # its attention returns after out_lin
    ("mlp_post", Hook("ffn.lin2", "pre")),  # its FFN runs lin1, activation, lin2 in one forward
)
_DISTILBERT_FIELDS = (
    ("hidden_size", "dim"),
    ("num_attention_heads", "n_heads"),
    ("num_hidden_layers", "n_layers"),
    ("intermediate_size", "hidden_dim"),
    ("hidden_act", "activation"),
    ("hidden_dropout_prob", "dropout"),
    ("attention_probs_dropout_prob", "attention_dropout"),
    ("layer_norm_eps", 1e-12),  # nn.LayerNorm(dim, eps=1e-12) in its code, on every transformers
    ("type_vocab_size", 1),  # one token type: none is ever added
)
# ALBERT's modules, by BERT's names: its attention holds the first add & norm, its layer the feed-forward.
_ALBERT_RENAMED = (
    ("attention.self.query", "attention.query"),
    ("attention.self.key", "attention.key"),
    ("attention.self.value", "attention.value"),
    ("attention.output.dense", "attention.dense"),
    ("attention.output.LayerNorm", "attention.LayerNorm"),
    ("intermediate.dense", "ffn"),
    ("output.dense", "ffn_output"),
    ("output.LayerNorm", "full_layer_layer_norm"),
    ("pooler.dense", "pooler"),  # its pooler is a dense, then a tanh of its own
    ("pooler", "pooler_activation"),
)
_ALBERT_HOOKS = (
    ("z", Hook("attention.dense", "pre")),  # BERT's `attention.self` output; ALBERT's attention returns later
    ("mlp_post", Hook("ffn_output", "pre")),  # BERT's `intermediate` output; ALBERT has no such module
)

MEMBERS = {
    m.model_type: m
    for m in (
        Member("bert", "BertModel", SEQUENTIAL, _BERT_SPECIALS),
        Member("electra", "ElectraModel", SEQUENTIAL, _BERT_SPECIALS, projection="embeddings_project"),
        Member("ernie", "ErnieModel", SEQUENTIAL, _BERT_SPECIALS, task_types="use_task_id"),
        Member(
            "albert",
            "AlbertModel",
            SEQUENTIAL,
            _ALBERT_SPECIALS,
            projection="encoder.embedding_hidden_mapping_in",
            always_projects=True,
            layers="encoder.albert_layer_groups.{group}.albert_layers.0",
            renamed=_ALBERT_RENAMED,
            hooks=_ALBERT_HOOKS,
            feed_forward=("ffn", "activation", "ffn_output"),
        ),
        Member(
            "distilbert",
            "DistilBertModel",
            SEQUENTIAL,
            _BERT_SPECIALS,
            layers="transformer.layer.{i}",
            renamed=_DISTILBERT_RENAMED,
            hooks=_DISTILBERT_HOOKS,
            feed_forward=("ffn",),
            token_types=False,
            fields=_DISTILBERT_FIELDS,
            undropped=("attn_out",),
        ),
        Member("roberta", "RobertaModel", AFTER_PADDING, _ROBERTA_SPECIALS),
        Member("xlm-roberta", "XLMRobertaModel", AFTER_PADDING, _ROBERTA_SPECIALS),
        Member("camembert", "CamembertModel", AFTER_PADDING, _ROBERTA_SPECIALS),
        Member("data2vec-text", "Data2VecTextModel", AFTER_PADDING, _ROBERTA_SPECIALS),
    )
}
# Family members the reference does not follow yet, and what it would need: refused by name.
NOT_YET = {
    "xlm-roberta-xl": "pre-LN layers (a LayerNorm before each sublayer)",
    "mpnet": "relative attention of its own, which is not BERT's",
}


def spec_config(config):
    """`config` with BERT's field names (`hidden_size`, `intermediate_size`, `layer_norm_eps`, ...) where its
    member keeps them under its own keys or in its code (DistilBERT): a copy; BERT's own config as it is."""
    fields = of_config(config).fields
    if not fields or getattr(config, "_bert_fields", False):
        return config
    import copy

    view = copy.copy(config)
    for name, source in fields:
        if not hasattr(view, name):
            setattr(view, name, getattr(config, source) if isinstance(source, str) else source)
    view._bert_fields = True
    return view


def spec_dict(config: dict) -> dict:
    """A config.json's dict with BERT's field names added where its member keeps them elsewhere."""
    fields = member(config.get("model_type")).fields if config.get("model_type") in MEMBERS else ()
    out = dict(config)
    for name, source in fields:
        if name not in out:
            if not isinstance(source, str):
                out[name] = source
            elif source in config:
                out[name] = config[source]
    return out


def projects(config) -> bool:
    """Whether a loaded config's embeddings are projected to the hidden size (ELECTRA-small's)."""
    return of_config(config).projects(config)


def adds_task_types(config) -> bool:
    """Whether a loaded config's embeddings add task-type embeddings (ERNIE's `use_task_id`)."""
    return of_config(config).adds_task_types(config)


def embed_names(config) -> tuple[str, ...]:
    """The embeddings' activation names of a loaded config, in forward order (`bertcheck.spec.names`)."""
    return names.embed_names(projects(config), adds_task_types(config), of_config(config).token_types)


def embed_hooks(config) -> dict:
    """Where each of `embed_names(config)` is read on the HF model (a projected `embed.out` at the member's
    projection: ELECTRA's `embeddings_project`, ALBERT's `encoder.embedding_hidden_mapping_in`)."""
    hooks = names.embed_hooks(projects(config), adds_task_types(config), of_config(config).token_types)
    if projects(config):
        hooks["embed.out"] = Hook(of_config(config).projection, "output")
    return hooks


def layer_path(config, i: int) -> str:
    """Layer `i`'s HF module path in a loaded config's model (`Member.layer_path`)."""
    return of_config(config).layer_path(config, i)


def module_path(config, i: int | None, relative: str) -> str:
    """The HF module path of BERT's `relative` module in layer `i` (None: in the model) (`Member.module_path`)."""
    return of_config(config).module_path(config, i, relative)


def layer_of(model, i: int):
    """Layer `i` of an HF model of the family: its own module, or (ALBERT) its group's shared one."""
    return model.get_submodule(layer_path(model.config, i))


def submodule(layer, config, relative: str):
    """BERT's `relative` module (``output.LayerNorm``) inside an HF layer of `config`'s member."""
    own = of_config(config).module_path(config, None, relative)
    return layer.get_submodule(own) if own else layer


def types_given(token_type_ids) -> dict:
    """``token_type_ids=`` for an HF call where there are token types: none for a member that takes none
    (DistilBERT's forward raises on the argument in 4.x, even as None)."""
    return {} if token_type_ids is None else {"token_type_ids": token_type_ids}


def hf_embeddings(model):
    """The HF model's embeddings as one callable giving `embed.out` (B, T, H): its embeddings module, then
    its projection where the member projects them (ELECTRA-small's, ALBERT's)."""

    def embeddings(token_type_ids=None, **inputs):  # DistilBERT's take no token_type_ids
        out = model.embeddings(**inputs, **types_given(token_type_ids))
        return model.get_submodule(of_config(model.config).projection)(out) if projects(model.config) else out

    return embeddings


def hf_pooler(model):
    """The HF model's pooler as one callable, last hidden state (B, T, H) -> `pooler_output` (B, H); None
    where it has none. BERT's `BertPooler` takes the states; ALBERT's is a dense then `pooler_activation`."""
    if getattr(model, "pooler", None) is None:
        return None
    out = module_path(model.config, None, "pooler")
    if out == "pooler":
        return model.pooler
    dense = model.get_submodule(module_path(model.config, None, "pooler.dense"))
    activation = model.get_submodule(out)
    return lambda hidden: activation(dense(hidden[:, 0]))


def feed_forward(layer, config):
    """The feed-forward of an HF layer of `config`'s member, H -> I -> H without its residual, as one callable."""
    steps = [layer.get_submodule(path) for path in of_config(config).feed_forward]

    def run(x):
        for step in steps:
            x = step(x)
        return x

    return run


def embedding_width(config) -> int:
    """The width the embeddings run at: `embedding_size` where the member projects, else the hidden size."""
    return config.embedding_size if projects(config) else config.hidden_size


def member(model_type: str | None) -> Member:
    """The member a config's `model_type` names (None: BERT, as old BERT configs omit it)."""
    return MEMBERS[model_type or "bert"]


def of_config(config) -> Member:
    """The member of a loaded config (a `PretrainedConfig`)."""
    return member(getattr(config, "model_type", None) or "bert")
