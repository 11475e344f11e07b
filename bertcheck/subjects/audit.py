"""Never green on a model that was not checked: the config audit and the loading report.

Two questions are asked of every checkpoint before a single property runs, by pytest, `check`,
`walk`, `verify` and `baseline` alike (they all load through `bertcheck.subjects.models.load_model`):

1. **Does the reference compute what the config says?** Every `BertConfig` field that changes the
   encoder's math is either implemented by the reference (`bertcheck/spec/reference.py`) or refused here
   with one line naming the field and its value (`FIELDS` is the table; the README shows it).
2. **Is the model that was checked the one in the checkpoint?** transformers' own loading report
   (missing, unexpected, mismatched keys) must show every embedding and encoder weight loaded.
   Weights left at their random init, or weights in the file that nothing read, are refused and
   listed. The pooler and task heads are not part of the encoder: they are noted, never checked.

Everything here reads plain dicts and strings (no torch), so `resolve` can refuse a bad config.json
before pytest collects a test.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from bertcheck.spec.family import AFTER_PADDING, MEMBERS, spec_dict

# hidden_act values the reference implements from their formulas (`bertcheck.spec.reference.ACTIVATIONS`;
# a test holds the two equal). The parametric ones of transformers.activations (prelu, xielu) carry
# weights of their own inside the feed-forward: not BERT's, refused.
ACTIVATIONS = (
    "gelu",
    "gelu_python",
    "gelu_10",
    "gelu_new",
    "gelu_fast",
    "gelu_accurate",
    "gelu_pytorch_tanh",
    "gelu_python_tanh",
    "quick_gelu",
    "relu",
    "relu2",
    "relu6",
    "leaky_relu",
    "silu",
    "swish",
    "mish",
    "sigmoid",
    "tanh",
    "hardswish",
    "laplace",
    "sqrtsoftplus",
    "linear",
)
RELATIVE = ("relative_key", "relative_key_query")
# Keys of a BertModel state dict that are the encoder under test: what the reference reads.
ENCODER_PREFIXES = ("embeddings.", "encoder.")
# What the audit says of a checkpoint without pooler weights: transformers initializes them at random, and
# the pooler property (and a candidate's pooler_output) would compare a random pooler with itself.
NO_POOLER = "no pooler in the checkpoint (transformers left it at its random init): the pooler is not checked"

# Keys a checkpoint may carry that are not the encoder: the pooler and the heads of BertFor* models.
HEAD_PREFIXES = ("pooler.", "cls.", "classifier.", "qa_outputs.")


@dataclass(frozen=True)
class Field:
    """One config field that changes what the encoder computes, and what bertcheck does with it."""

    name: str
    checked: str  # the values the reference implements
    refused: str  # the values refused before any test runs ("" when none)


FIELDS = (
    Field(
        "hidden_act",
        "every activation of `transformers.activations` without weights of its own: " + ", ".join(ACTIVATIONS),
        "prelu, xielu (parametric), anything else",
    ),
    Field(
        "position_embedding_type",
        "absolute; relative_key and relative_key_query where the installed transformers implements them (4.x)",
        "relative_* on transformers 5.x, which drops their distance_embedding weights; any other value",
    ),
    Field("is_decoder", "false", "true: causal attention, a decoder"),
    Field("add_cross_attention", "false", "true: cross-attention weights the encoder never runs"),
    Field(
        "chunk_size_feed_forward",
        "0",
        "anything else: the feed-forward runs in chunks the hooks do not follow "
        "(the same math: save the checkpoint with 0)",
    ),
    Field("type_vocab_size", ">= 1; sentence pairs are drawn only when >= 2", "< 1"),
    Field("max_position_embeddings", ">= 2; texts are truncated to min(512, it) tokens", "< 2"),
    Field("hidden_size, num_attention_heads", "hidden_size a multiple of num_attention_heads", "otherwise"),
    Field("layer_norm_eps", "any number >= 0, read by the reference", "negative or not a number"),
    Field(
        "hidden_dropout_prob, attention_probs_dropout_prob",
        "0 <= p < 1 (eval mode ignores them; the dropout property reads hidden_dropout_prob)",
        "p < 0 or p >= 1",
    ),
    Field("vocab_size, intermediate_size, num_hidden_layers", "any; each weight's shape is checked against them", ""),
    Field(
        "dtype / torch_dtype",
        "float32; float16 and bfloat16 checkpoints are checked from an upcast copy, and the run header says so",
        "",
    ),
    Field(
        "pad_token_id",
        "BERT: any (it only marks an embedding row whose gradient is zero); RoBERTa's family: the padding_idx "
        "its positions count from (`bertcheck.spec.family`), read by the reference",
        "missing in a RoBERTa-family config",
    ),
    Field("model_type", ", ".join(MEMBERS), "every other, by name"),
    Field(
        "embedding_size",
        "ELECTRA: any; where it differs from hidden_size the embeddings_project dense is followed (ELECTRA-small). "
        "ALBERT: any; its embedding_hidden_mapping_in dense is followed whatever the widths",
        "",
    ),
    Field(
        "num_hidden_groups, inner_group_num",
        "ALBERT: any number of groups from 1 to num_hidden_layers, each of one layer (layer i runs group "
        "i * num_hidden_groups // num_hidden_layers, its weights shared with the group's other layers)",
        "inner_group_num other than 1 (no hidden state between a group's inner layers to check them by); "
        "num_hidden_groups outside 1 .. num_hidden_layers",
    ),
    Field(
        "use_task_id, task_type_vocab_size",
        "ERNIE: either; with use_task_id the task-type embedding (row 0, as transformers adds it) is followed",
        "",
    ),
)


@dataclass
class Audit:
    """What a checkpoint's audit found: refusals (the run must not start) and notes (say them, then run)."""

    refusals: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def extend(self, other: "Audit") -> "Audit":
        self.refusals += other.refusals
        self.notes += other.notes
        return self


def relative_positions_supported(transformers_version: str) -> bool:
    """transformers 4.x implements BERT's relative position scores; 5.x removed them (it builds no
    `distance_embedding` and uses absolute positions whatever the config says)."""
    return int(transformers_version.split(".")[0]) < 5


def _number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def audit_config(config: Mapping, transformers_version: str) -> Audit:
    """Every field of `config` (a `BertConfig.to_dict()` or config.json) that changes the encoder's math,
    against what the reference implements on this transformers."""
    audit = Audit()
    refuse = audit.refusals.append
    config = spec_dict(dict(config))  # BERT's names for a member's own keys (DistilBERT's activation, dim, ...)
    act = config.get("hidden_act", "gelu")
    if act not in ACTIVATIONS:
        why = (
            "a parametric activation (weights inside the feed-forward), not BERT's"
            if act in ("prelu", "xielu")
            else "no reference for it"
        )
        refuse(f"hidden_act={act!r}: {why}; bertcheck checks {', '.join(ACTIVATIONS)}")
    positions = config.get("position_embedding_type") or "absolute"
    if positions in RELATIVE and not relative_positions_supported(transformers_version):
        refuse(
            f"position_embedding_type={positions!r}: transformers {transformers_version}'s BertModel does not "
            f"implement it (it drops the distance_embedding weights and uses absolute positions), so the model it "
            f"loads is not the one the config describes; check it with transformers 4.x"
        )
    elif positions not in ("absolute", *RELATIVE):
        refuse(f"position_embedding_type={positions!r}: BERT has absolute, relative_key and relative_key_query")
    elif positions in RELATIVE:
        audit.notes.append(
            f"position_embedding_type={positions!r}: relative position scores, checked; the "
            f"permutation properties do not apply (a layer sees token order)"
        )
    if config.get("is_decoder"):
        refuse("is_decoder=True: a decoder attends causally; bertcheck checks the bidirectional BERT encoder")
    if config.get("add_cross_attention"):
        refuse(
            "add_cross_attention=True: each layer carries cross-attention weights that the encoder never runs; "
            "bertcheck checks the BERT encoder alone"
        )
    chunk = config.get("chunk_size_feed_forward") or 0
    if chunk:
        refuse(
            f"chunk_size_feed_forward={chunk!r}: the feed-forward runs in chunks, which bertcheck's hooks do not "
            f"follow; the math is the same, so save the checkpoint with chunk_size_feed_forward=0"
        )
    types = config.get("type_vocab_size", 2)
    if config.get("model_type") in MEMBERS and not MEMBERS[config["model_type"]].token_types:
        audit.notes.append(f"{config['model_type']} has no token types: no sentence pairs are drawn")
    elif not isinstance(types, int) or types < 1:
        refuse(f"type_vocab_size={types!r}: need at least 1 token type")
    elif types == 1:
        audit.notes.append("type_vocab_size=1: one token type, so no sentence pairs are drawn")
    positions_max = config.get("max_position_embeddings", 512)
    if not isinstance(positions_max, int) or positions_max < 2:
        refuse(f"max_position_embeddings={positions_max!r}: need room for [CLS] and [SEP]")
    elif positions_max < 512:
        audit.notes.append(f"max_position_embeddings={positions_max}: texts are truncated to {positions_max} tokens")
    hidden, heads = config.get("hidden_size", 768), config.get("num_attention_heads", 12)
    if not (isinstance(hidden, int) and isinstance(heads, int) and heads > 0 and hidden % heads == 0):
        refuse(f"hidden_size={hidden!r} is not a multiple of num_attention_heads={heads!r}")
    eps = config.get("layer_norm_eps", 1e-12)
    if not _number(eps) or eps < 0:
        refuse(f"layer_norm_eps={eps!r}: need a number >= 0")
    for name in ("hidden_dropout_prob", "attention_probs_dropout_prob"):
        p = config.get(name, 0.1)
        if not _number(p) or not 0 <= p < 1:
            refuse(f"{name}={p!r}: need 0 <= p < 1")
    model_type = config.get("model_type") or "bert"
    if model_type in MEMBERS and MEMBERS[model_type].positions == AFTER_PADDING:
        pad = config.get("pad_token_id")
        if not isinstance(pad, int) or isinstance(pad, bool) or pad < 0:
            refuse(f"pad_token_id={pad!r}: a {model_type} model counts its positions from it; need an id >= 0")
        elif isinstance(positions_max, int) and positions_max - pad - 1 < 2:
            refuse(f"max_position_embeddings={positions_max!r} leaves no room past padding_idx={pad}")
    elif model_type not in MEMBERS:
        refuse(f"model_type={model_type!r}: bertcheck follows {', '.join(MEMBERS)}")
    if model_type == "distilbert" and config.get("sinusoidal_pos_embds"):
        audit.notes.append(
            "sinusoidal_pos_embds=True: DistilBERT's position table is fixed sinusoids; the reference reads it as "
            "stored, so a table that is not the sinusoids is not caught here"
        )
    if model_type == "albert":
        inner, groups, layers = config.get("inner_group_num", 1), config.get("num_hidden_groups", 1), layers_of(config)
        if inner != 1:
            refuse(
                f"inner_group_num={inner!r}: each ALBERT group must hold one layer; with more, transformers gives "
                f"no hidden state between a group's inner layers, so they cannot be checked one by one"
            )
        if not isinstance(groups, int) or isinstance(groups, bool) or not 1 <= groups <= layers:
            refuse(f"num_hidden_groups={groups!r}: need 1 .. num_hidden_layers ({layers}) groups")
        elif groups < layers:
            audit.notes.append(
                f"ALBERT shares each group's weights across {layers} layers in {groups} group(s): every layer "
                f"is checked at its own use of them"
            )
    stored = config.get("dtype") or config.get("torch_dtype")
    if stored in ("float16", "bfloat16"):
        audit.notes.append(
            f"weights stored in {stored}: checked from an upcast float32 copy (float64 where drawn); "
            f"their {stored} rounding is part of the model, not an error"
        )
    return audit


def layers_of(config: Mapping) -> int:
    """num_hidden_layers of a config dict (BERT's 12 where it is missing)."""
    layers = config.get("num_hidden_layers", 12)
    return layers if isinstance(layers, int) and not isinstance(layers, bool) else 12


def _listed(keys: Iterable[str], limit: int = 5) -> str:
    keys = sorted(keys)
    return ", ".join(keys[:limit]) + (f" and {len(keys) - limit} more" if len(keys) > limit else "")


def _common_prefix(keys: list[str]) -> str | None:
    """The dotted prefix every key shares ("model."), if stripping it would make them encoder keys."""
    heads = {key.split(".", 1)[0] for key in keys if "." in key}
    if len(heads) == 1:
        prefix = heads.pop() + "."
        if all(key.removeprefix(prefix).startswith(ENCODER_PREFIXES + HEAD_PREFIXES) for key in keys):
            return prefix
    return None


def audit_loading(info: Mapping[str, Iterable[str]]) -> Audit:
    """transformers' loading report (`from_pretrained(..., output_loading_info=True)`): refuse encoder
    weights that were not loaded, and weights in the checkpoint that nothing loaded."""
    audit = Audit()
    missing = sorted(info.get("missing_keys") or ())
    unexpected = sorted(info.get("unexpected_keys") or ())
    mismatched = list(info.get("mismatched_keys") or ())
    not_loaded = [k for k in missing if k.startswith(ENCODER_PREFIXES)]
    # Buffers (position_ids, token_type_ids) are rebuilt from the config, and heads are not the encoder.
    stray = [
        k for k in unexpected if not k.startswith(HEAD_PREFIXES) and not k.endswith(("position_ids", "token_type_ids"))
    ]
    if not_loaded:
        audit.refusals.append(
            f"{len(not_loaded)} encoder weights are missing from the checkpoint (transformers left "
            f"them at their random init): {_listed(not_loaded)}"
        )
    if stray:
        prefix = _common_prefix(stray)
        hint = (
            f"; they are stored under the prefix {prefix!r}: save the BertModel itself (model.save_pretrained)"
            if prefix
            else ""
        )
        audit.refusals.append(
            f"{len(stray)} weights in the checkpoint were not loaded by BertModel: {_listed(stray)}{hint}"
        )
    if mismatched:
        audit.refusals.append(
            f"{len(mismatched)} weights have another shape than the config implies: "
            f"{_listed(str(m[0] if isinstance(m, (tuple, list)) else m) for m in mismatched)}"
        )
    heads = sorted({k.split(".", 1)[0] for k in unexpected if k.startswith(HEAD_PREFIXES)})
    # 4.33 names a missing key with the model's prefix (`bert.pooler.dense.weight`), 5.x without it.
    if any(k.removeprefix("bert.").startswith("pooler.") for k in missing):
        audit.notes.append(NO_POOLER)
    if heads:
        audit.notes.append(f"task head weights ({', '.join(heads)}) in the checkpoint: not loaded, not checked")
    return audit
