"""The one vocabulary of activation names, shared by the reference, the capture, the checks and the messages.

Names follow TransformerLens. Per layer, in the order the forward computes them::

    resid_pre -> q, k, v -> attn_scores -> pattern -> z -> attn_out
      -> ln1_in = attn_out + resid_pre -> resid_mid = LN1(ln1_in)            (BertSelfOutput)
      -> mlp_pre -> mlp_post = gelu(mlp_pre) -> mlp_out
      -> ln2_in = mlp_out + resid_mid -> resid_post = LN2(ln2_in)             (BertOutput)

BERT normalizes *after* each residual add, and the second residual is the first LayerNorm's output
(`resid_mid`), not the layer input. Full names are dotted: ``blocks.3.ln1_in``, ``embed.ln_in``.
"""

from __future__ import annotations

from dataclasses import dataclass

# Embeddings: word + position + token type, summed, then LayerNorm.
EMBED_NAMES = ("embed.tokens", "embed.positions", "embed.token_types", "embed.ln_in", "embed.out")

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

# Relative to `encoder.layer.{i}`; "" is the layer itself.
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


def layer_name(layer: int, name: str) -> str:
    """``blocks.{layer}.{name}``: the full name of a per-layer activation."""
    return f"blocks.{layer}.{name}"


def layer_module(layer: int, relative: str) -> str:
    """The HF module path of a module inside layer `layer`."""
    return f"encoder.layer.{layer}" + (f".{relative}" if relative else "")
