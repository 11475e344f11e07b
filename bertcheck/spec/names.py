"""The one vocabulary of activation names, shared by the reference, the capture, the checks and the messages.

Per layer, in the order the forward computes them, with each one's shape (B batch, T tokens,
H hidden_size, N num_attention_heads, I intermediate_size)::

    resid_pre (B,T,H) -> q, k, v (B,T,H: heads merged) -> attn_scores (B,N,T,T) -> pattern (B,N,T,T)
      -> z (B,T,H: heads merged) -> attn_out (B,T,H)
      -> ln1_in = attn_out + resid_pre (B,T,H) -> resid_mid = LN1(ln1_in) (B,T,H)        (BertSelfOutput)
      -> mlp_pre (B,T,I) -> mlp_post = gelu(mlp_pre) (B,T,I) -> mlp_out (B,T,H)
      -> ln2_in = mlp_out + resid_mid (B,T,H) -> resid_post = LN2(ln2_in) (B,T,H)        (BertOutput)

After the last layer, the pooler: ``pooler.pre`` = dense(resid_post[:, 0]) (B,H), ``pooler.out`` =
tanh(pooler.pre) (B,H), HF's ``pooler_output``.

BERT normalizes *after* each residual add, and the second residual is the first LayerNorm's output
(`resid_mid`), not the layer input. Full names are dotted: ``blocks.3.ln1_in``, ``embed.ln_in``.

The names come from TransformerLens, but two mean something else here, and four have another shape.
Here `resid_mid` and `resid_post` are what BERT passes on, each LayerNorm's *output*; TransformerLens'
BERT (`HookedEncoder`, its `BertBlock`) gives those names to the sums *before* each LayerNorm (here
`ln1_in`, `ln2_in`), and keeps the heads of q, k, v and z apart. The mapping:

    bertcheck     TransformerLens (HookedEncoder, blocks.i.)
    resid_pre     hook_resid_pre
    q, k, v, z    attn.hook_q, hook_k, hook_v, hook_z, there (B,T,N,H/N): here heads merged, (B,T,H)
    attn_scores   attn.hook_attn_scores
    pattern       attn.hook_pattern
    attn_out      hook_attn_out
    ln1_in        hook_resid_mid              (the sum before LN1)
    resid_mid     no hook: LN1's output, `normalized_resid_mid` in its code
    mlp_pre       mlp.hook_pre
    mlp_post      mlp.hook_post
    mlp_out       hook_mlp_out
    ln2_in        hook_resid_post             (the sum before LN2)
    resid_post    hook_normalized_resid_post  (LN2's output: the layer's output, hidden_states[i+1])
"""

from __future__ import annotations

from dataclasses import dataclass

# Each layer activation's shape, in the letters above: what a candidate's outputs are held to.
LAYER_SHAPES = {
    "resid_pre": "BTH",
    "q": "BTH",
    "k": "BTH",
    "v": "BTH",
    "attn_scores": "BNTT",
    "pattern": "BNTT",
    "z": "BTH",
    "attn_out": "BTH",
    "ln1_in": "BTH",
    "resid_mid": "BTH",
    "mlp_pre": "BTI",
    "mlp_post": "BTI",
    "mlp_out": "BTH",
    "ln2_in": "BTH",
    "resid_post": "BTH",
}

# Embeddings: word + position + token type (+ ERNIE's task type, `TASK_TYPES`), summed, then LayerNorm;
# every one (B,T,H).
EMBED_NAMES = ("embed.tokens", "embed.positions", "embed.token_types", "embed.ln_in", "embed.out")

# The pooler (`BertPooler`), after the last layer: the first token's last hidden state through a dense
# layer (pre) and tanh (out, HF's `pooler_output`); each (B,H), one per row, not per token.
POOLER_NAMES = ("pooler.pre", "pooler.out")

# One layer, in forward order. `attn_scores` and `pattern` are computed by the reference only: HF does
# not expose them without switching attention implementation, so the capture leaves them out.
LAYER_NAMES = (
    "resid_pre",
    "q",
    "k",
    "v",
    "attn_scores",
    "pattern",
    "z",
    "attn_out",
    "ln1_in",
    "resid_mid",
    "mlp_pre",
    "mlp_post",
    "mlp_out",
    "ln2_in",
    "resid_post",
)


@dataclass(frozen=True)
class Hook:
    """Where an activation is read on the HF model: a module path and the kind of hook.

    `pre` reads the module's first input (the LayerNorm inputs are the residual adds' outputs, which
    no module returns); `output` reads what it returns (the first element when it returns a tuple).
    """

    module: str
    kind: str  # "pre" or "output"


EMBED_HOOKS = {
    "embed.tokens": Hook("embeddings.word_embeddings", "output"),
    "embed.positions": Hook("embeddings.position_embeddings", "output"),
    "embed.token_types": Hook("embeddings.token_type_embeddings", "output"),
    "embed.ln_in": Hook("embeddings.LayerNorm", "pre"),
    "embed.out": Hook("embeddings.LayerNorm", "output"),
}

# ELECTRA-small's embeddings run at embedding_size (E) and a dense maps them to the hidden size
# (`bertcheck.spec.family`): there the embedding LayerNorm's output is `embed.ln_out` (B,T,E), and
# `embed.out` (B,T,H), hidden_states[0] as everywhere, is the projection's output. The embeddings' names
# before it are (B,T,E) there.
PROJECTED_EMBED_NAMES = (*EMBED_NAMES[:-1], "embed.ln_out", "embed.out")
PROJECTED_EMBED_HOOKS = {
    **EMBED_HOOKS,
    "embed.ln_out": Hook("embeddings.LayerNorm", "output"),
    "embed.out": Hook("embeddings_project", "output"),
}

POOLER_HOOKS = {
    "pooler.pre": Hook("pooler.dense", "output"),
    "pooler.out": Hook("pooler", "output"),
}

# Relative to `encoder.layer.{i}`; "" is the layer itself. A family member that keeps them elsewhere (ALBERT)
# translates them (`bertcheck.spec.family.Member.layer_hooks`).
LAYER_HOOKS = {
    "resid_pre": Hook("", "pre"),
    "q": Hook("attention.self.query", "output"),
    "k": Hook("attention.self.key", "output"),
    "v": Hook("attention.self.value", "output"),
    "z": Hook("attention.self", "output"),
    "attn_out": Hook("attention.output.dense", "output"),
    "ln1_in": Hook("attention.output.LayerNorm", "pre"),
    "resid_mid": Hook("attention.output.LayerNorm", "output"),
    "mlp_pre": Hook("intermediate.dense", "output"),
    "mlp_post": Hook("intermediate", "output"),
    "mlp_out": Hook("output.dense", "output"),
    "ln2_in": Hook("output.LayerNorm", "pre"),
    "resid_post": Hook("output.LayerNorm", "output"),
}

CAPTURED_LAYER_NAMES = tuple(name for name in LAYER_NAMES if name in LAYER_HOOKS)


@dataclass(frozen=True)
class LayerNormSite:
    """One LayerNorm of the architecture: its input and output activations and its HF module."""

    name: str  # "embed.ln", "ln1", "ln2"
    input: str
    output: str
    module: str  # relative to the model (embeddings) or to `encoder.layer.{i}`


EMBED_LN = LayerNormSite("embed.ln", "embed.ln_in", "embed.out", "embeddings.LayerNorm")
PROJECTED_EMBED_LN = LayerNormSite("embed.ln", "embed.ln_in", "embed.ln_out", "embeddings.LayerNorm")
LAYER_LNS = (
    LayerNormSite("ln1", "ln1_in", "resid_mid", "attention.output.LayerNorm"),
    LayerNormSite("ln2", "ln2_in", "resid_post", "output.LayerNorm"),
)


@dataclass(frozen=True)
class ResidualAdd:
    """`total == sublayer + residual`: the add that feeds a LayerNorm."""

    total: str
    sublayer: str
    residual: str


RESIDUAL_ADDS = (
    ResidualAdd("ln1_in", "attn_out", "resid_pre"),
    ResidualAdd("ln2_in", "mlp_out", "resid_mid"),
)


# ERNIE's optional task-type embeddings (`use_task_id`), added after the positions: (B,T,E), row 0 where
# the call gives no task_type_ids.
TASK_TYPES = "embed.task_types"
TASK_TYPE_HOOK = Hook("embeddings.task_type_embeddings", "output")


def embed_names(projected: bool, task_types: bool = False, token_types: bool = True) -> tuple[str, ...]:
    """The embeddings' activation names, in forward order, of a model whose embeddings are projected or
    not, that adds task-type embeddings (ERNIE's `use_task_id`) or not, and token types or not (DistilBERT)."""
    names = PROJECTED_EMBED_NAMES if projected else EMBED_NAMES
    if not token_types:
        names = tuple(name for name in names if name != "embed.token_types")
    if task_types:
        at = names.index("embed.ln_in")
        names = (*names[:at], TASK_TYPES, *names[at:])
    return names


def embed_hooks(projected: bool, task_types: bool = False, token_types: bool = True) -> dict[str, Hook]:
    """Where each of `embed_names(projected, task_types, token_types)` is read on the HF model."""
    hooks = PROJECTED_EMBED_HOOKS if projected else EMBED_HOOKS
    return {
        name: TASK_TYPE_HOOK if name == TASK_TYPES else hooks[name]
        for name in embed_names(projected, task_types, token_types)
    }


def embed_ln(projected: bool) -> LayerNormSite:
    """The embedding LayerNorm: its output is `embed.ln_out` where a projection follows it."""
    return PROJECTED_EMBED_LN if projected else EMBED_LN


def layer_name(layer: int, name: str) -> str:
    """``blocks.{layer}.{name}``: the full name of a per-layer activation."""
    return f"blocks.{layer}.{name}"


def where_of_name(name: str) -> str:
    """Where a full name sits, as failures say it: "embeddings" for ``embed.*``, "the pooler" for
    ``pooler.*``, "layer i" for ``blocks.{i}.*``."""
    if name.startswith("pooler."):
        return "the pooler"
    return "embeddings" if name.startswith("embed.") else f"layer {name.split('.')[1]}"


def state_name(i: int) -> str:
    """The vocabulary name of hidden state i: the embeddings' output, then each layer's resid_post."""
    return "embed.out" if i == 0 else layer_name(i - 1, "resid_post")


def state_index(name: str) -> str:
    """Where an output's vocabulary name sits in HF's output: ``hidden_states[i]``, ``pooler_output``."""
    if name == "pooler.out":
        return "pooler_output"
    return "hidden_states[0]" if name == "embed.out" else f"hidden_states[{int(name.split('.')[1]) + 1}]"
