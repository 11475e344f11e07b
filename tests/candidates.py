"""Reimplementations of BERT for bertcheck to check: real ones that must pass, and a zoo of broken ones.

Every factory here follows the protocol in `bertcheck.subjects.candidate`: a layer factory takes
``(hf_layer, config)``, a model factory ``(hf_model)``, and each returns the function to check.
"""

from __future__ import annotations

import functools
import math
from types import SimpleNamespace

import torch
import torch.nn.functional as F

import bertcheck

from tests import mutants
from bertcheck.subjects.candidate import hf_layer as _hf_layer
from bertcheck.subjects.candidate import hf_model as _hf_model

# ---- real reimplementations: these must pass ------------------------------------------------------


def _torch_layer(hf_layer, config) -> torch.nn.TransformerEncoderLayer:
    """`torch.nn.TransformerEncoderLayer` (post-LN, exact GELU) with the weights of a `BertLayer`.

    BERT's q, k, v projections become the packed ``in_proj``; the attention output dense is
    ``out_proj``; the feed-forward is ``linear1``/``linear2``; the two LayerNorms are ``norm1``/``norm2``.
    """
    attn = hf_layer.attention
    weight = attn.self.query.weight
    layer = torch.nn.TransformerEncoderLayer(
        config.hidden_size,
        config.num_attention_heads,
        config.intermediate_size,
        dropout=0.0,
        activation="gelu",
        layer_norm_eps=config.layer_norm_eps,
        batch_first=True,
        norm_first=False,
    ).to(dtype=weight.dtype, device=weight.device)
    with torch.no_grad():
        qkv = (attn.self.query, attn.self.key, attn.self.value)
        layer.self_attn.in_proj_weight.copy_(torch.cat([m.weight for m in qkv]))
        layer.self_attn.in_proj_bias.copy_(torch.cat([m.bias for m in qkv]))
        for ours, theirs in (
            (layer.self_attn.out_proj, attn.output.dense),
            (layer.linear1, hf_layer.intermediate.dense),
            (layer.linear2, hf_layer.output.dense),
            (layer.norm1, attn.output.LayerNorm),
            (layer.norm2, hf_layer.output.LayerNorm),
        ):
            ours.weight.copy_(theirs.weight)
            ours.bias.copy_(theirs.bias)
    return layer.eval()


def torch_encoder_layer(hf_layer, config):
    """PyTorch's own `TransformerEncoderLayer` with the weights of a `BertLayer` (`_torch_layer`)."""
    layer = _torch_layer(hf_layer, config)

    def fn(hidden_states, attention_mask):
        ignore = attention_mask == 0  # True: ignore this key
        # A row whose every key is masked: torch's attention gives 0/0 = NaN there (`torch_encoder_layer_as_is`).
        # Attend to every key in such a row instead, as transformers' sdpa path does: its outputs are
        # padding, never read, but finite.
        return layer(hidden_states, src_key_padding_mask=ignore & ~ignore.all(dim=-1, keepdim=True))

    return fn


def torch_encoder_layer_as_is(hf_layer, config):
    """`torch_encoder_layer` with the padding mask handed over as it is: a fully padded row comes out NaN
    (every key masked: softmax of -inf everywhere), which a masked mean pooling turns into a NaN embedding.
    Found by the fully padded row class (issue #26), in PyTorch's own layer."""
    layer = _torch_layer(hf_layer, config)

    def fn(hidden_states, attention_mask):
        return layer(hidden_states, src_key_padding_mask=attention_mask == 0)

    return fn


def compiled_model(hf_model):
    """The HF model itself under `torch.compile` (inductor, dynamic shapes: one compilation serves
    every batch size and length)."""
    compiled = torch.compile(hf_model.eval(), dynamic=True)

    def fn(input_ids, attention_mask, token_type_ids):
        out = compiled(
            input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids, output_hidden_states=True
        )
        return out.hidden_states

    return fn


def _export_outputs(hf_model) -> bytes:
    """HF's model exported to ONNX as users ship it: last_hidden_state and pooler_output its only
    outputs (the dynamo exporter, dynamic batch and length)."""
    import io

    class Outputs(torch.nn.Module):
        def __init__(self, model):
            super().__init__()
            self.model = model

        def forward(self, input_ids, attention_mask, token_type_ids):
            out = self.model(input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids)
            return out.last_hidden_state, out.pooler_output

    ids, mask, types = torch.full((2, 7), 5), torch.ones(2, 7, dtype=torch.long), torch.zeros(2, 7, dtype=torch.long)
    batch, tokens = torch.export.Dim("batch", max=64), torch.export.Dim("tokens", max=512)
    dims = {name: {0: batch, 1: tokens} for name in ("input_ids", "attention_mask", "token_type_ids")}
    program = torch.onnx.export(
        Outputs(hf_model).eval(),  # the wrapper too: an exporter reads the mode of the module it is handed
        (ids, mask, types),
        dynamic_shapes=dims,
        input_names=list(dims),
        output_names=["last_hidden_state", "pooler_output"],
        dynamo=True,
    )
    buffer = io.BytesIO()
    program.save(buffer)
    return buffer.getvalue()


def _onnx_session(graph: bytes):
    """onnxruntime running `graph` on the CPU, called as an engine is: numpy in, a dict of numpy out."""
    import onnxruntime

    session = onnxruntime.InferenceSession(graph, providers=["CPUExecutionProvider"])
    names = [o.name for o in session.get_outputs()]

    def fn(input_ids, attention_mask, token_type_ids):
        feeds = {
            "input_ids": input_ids.numpy(),
            "attention_mask": attention_mask.numpy(),
            "token_type_ids": token_type_ids.numpy(),
        }
        return dict(zip(names, session.run(None, feeds)))

    return fn


@bertcheck.runs(dtypes=("float32",), devices=("cpu",))
@bertcheck.reads_only
def onnx_export(hf_model):
    """The export users ship, run by onnxruntime: numpy last_hidden_state and pooler_output only, float32."""
    return _onnx_session(_export_outputs(hf_model))


@bertcheck.runs(dtypes=("float32",), devices=("cpu",))
@bertcheck.reads_only
def onnx_export_int8(hf_model):
    """The same export, dynamically quantized to int8 weights (onnxruntime.quantization): a faithful
    int8 engine, and so not the spec's numbers."""
    import os
    import tempfile

    from onnxruntime.quantization import QuantType, quantize_dynamic

    with tempfile.TemporaryDirectory() as tmp:
        fp32, int8 = os.path.join(tmp, "model.onnx"), os.path.join(tmp, "model.int8.onnx")
        with open(fp32, "wb") as f:
            f.write(_export_outputs(hf_model))
        quantize_dynamic(fp32, int8, weight_type=QuantType.QInt8)
        with open(int8, "rb") as f:
            return _onnx_session(f.read())


# ---- an engine in plain torch ops: its last hidden state and pooler output alone, as numpy --------


def engine(*, types_ignored=False, position_offset=0, pooler_tanh=True, **layer_bugs):
    """A model factory as an inference engine is checked: plain torch ops (HF's embeddings, then
    `functional_layer`, then the pooler), float32 only, giving numpy last_hidden_state and pooler_output
    alone. Each keyword plants one known deviation (the defaults are correct), none from bertcheck's
    own catalogue code."""

    @bertcheck.runs(dtypes=("float32",))
    @bertcheck.reads_only
    def factory(hf_model):
        config = hf_model.config
        layers = [functional_layer(layer, config, **layer_bugs) for layer in hf_model.encoder.layer]
        w = {k: v.detach() for k, v in hf_model.embeddings.state_dict().items()}
        pooler = hf_model.pooler.dense
        eps = layer_bugs.get("eps") or config.layer_norm_eps  # one eps for every LayerNorm, as an engine has

        def fn(input_ids, attention_mask, token_type_ids):
            T = input_ids.shape[1]
            positions = (torch.arange(T) + position_offset).clamp(max=config.max_position_embeddings - 1)
            types = torch.zeros_like(token_type_ids) if types_ignored else token_type_ids
            x = (
                w["word_embeddings.weight"][input_ids]
                + w["position_embeddings.weight"][positions]
                + w["token_type_embeddings.weight"][types]
            )
            x = F.layer_norm(x, x.shape[-1:], w["LayerNorm.weight"], w["LayerNorm.bias"], eps)
            for layer in layers:
                x = layer(x, attention_mask)["resid_post"]
            pooled = pooler(x[:, 0])
            pooled = torch.tanh(pooled) if pooler_tanh else pooled
            return {"last_hidden_state": x.numpy(), "pooler_output": pooled.numpy()}

        return fn

    return factory


faithful_engine = engine()
tanh_gelu_engine = engine(gelu="tanh")  # by import path, for `bertcheck verify --model-impl`
# The catalogue's bugs (`bertcheck.spec.deviations`), each planted in an engine: name -> (factory, the name the
# diagnosis must give).
ENGINE_BUGS = {
    "tanh GELU": (tanh_gelu_engine, "tanh-approximate GELU"),
    "eps 1e-5": (engine(eps=1e-5), "LayerNorm eps 1e-5"),
    "eps 1e-6": (engine(eps=1e-6), "LayerNorm eps 1e-6"),
    "no 1/sqrt(d)": (engine(scale=False), "no 1/sqrt(d) scaling of the attention scores"),
    "pre-LN": (engine(pre_ln=True), "pre-LN: LayerNorm before each sublayer, not after its residual add"),
    "token types ignored": (engine(types_ignored=True), "token types ignored (every token type 0)"),
    "positions from 1": (engine(position_offset=1), "positions off by one (position ids from 1)"),
    "pooler without tanh": (engine(pooler_tanh=False), "the pooler without its tanh"),
}


def albert_engine(regroup):
    """An ALBERT export that unrolls its shared layers: HF's own modules, run layer by layer, layer i with
    the layer of group `regroup(i, layers, groups)`; last_hidden_state and pooler_output alone, as numpy."""

    @bertcheck.runs(dtypes=("float32",))
    @bertcheck.reads_only
    def factory(hf_model):
        config = hf_model.config
        L, G = config.num_hidden_layers, config.num_hidden_groups
        groups = hf_model.encoder.albert_layer_groups

        def fn(input_ids, attention_mask, token_type_ids):
            x = hf_model.encoder.embedding_hidden_mapping_in(
                hf_model.embeddings(input_ids=input_ids, token_type_ids=token_type_ids)
            )
            additive = (1.0 - attention_mask[:, None, None, :].float()) * torch.finfo(torch.float32).min
            for i in range(L):
                out = groups[regroup(i, L, G)].albert_layers[0](x, additive)
                x = out[0] if isinstance(out, tuple) else out
            pooled = hf_model.pooler_activation(hf_model.pooler(x[:, 0]))
            return {"last_hidden_state": x.numpy(), "pooler_output": pooled.numpy()}

        return torch.no_grad()(fn)

    return factory


# The family's deviations: BERT's faithful engine pointed at a member's weights, which numbers positions
# 0 .. T-1 and adds no task type; ALBERT exports that map its layers to its groups otherwise than
# transformers (layer i runs group i * groups // layers). name -> (the member's model, factory, the name
# the diagnosis must give).
FAMILY_ENGINE_BUGS = {
    "BERT positions on RoBERTa": (
        "random:roberta-tiny",
        faithful_engine,
        "BERT's positions (0 .. T-1) on a RoBERTa-family model",
    ),
    "ERNIE without task types": ("random:ernie-tiny", faithful_engine, "ERNIE's task-type embedding dropped"),
    "ALBERT unrolled round-robin": (
        "random:albert-tiny",
        albert_engine(lambda i, L, G: i % G),
        "ALBERT's shared layers unrolled round-robin (layer i runs group i % num_hidden_groups)",
    ),
    "ALBERT with group 0 only": (
        "random:albert-tiny",
        albert_engine(lambda i, L, G: 0),
        "ALBERT's group 0 run at every layer",
    ),
}
# The same export, its layers mapped to groups as transformers maps them: it must pass.
ALBERT_EXPORT = albert_engine(lambda i, L, G: i * G // L)


# ---- a functional BERT layer, and the ways people get it wrong -------------------------------------


def functional_layer(
    hf_layer,
    config,
    *,
    pre_ln=False,
    residual2="resid_mid",
    scale=True,
    softmax_dim=-1,
    split_heads=True,
    noise=0.0,
    unbiased_variance=False,
    variance_in_dtype=False,
    softmax_without_max=False,
    gelu="exact",
    eps=None,
    mask_value=None,
):
    """A BERT layer in plain torch ops; each keyword reproduces one bug (the defaults are correct)."""
    w = {k: v.detach() for k, v in hf_layer.state_dict().items()}
    nh = config.num_attention_heads
    eps = config.layer_norm_eps if eps is None else eps
    approximate = {"exact": "none", "tanh": "tanh"}[gelu]

    def ln(x, name):
        if variance_in_dtype:  # mean and variance summed term by term in the input's dtype: no wider accumulator
            centred = x - _running_mean(x)
            z = centred / torch.sqrt(_running_mean(centred * centred) + eps)
            return z * w[name + ".weight"] + w[name + ".bias"]
        if unbiased_variance:  # divides by H - 1: the variance torch.var gives by default
            z = (x - x.mean(-1, keepdim=True)) / torch.sqrt(x.var(-1, keepdim=True) + eps)
            return z * w[name + ".weight"] + w[name + ".bias"]
        return F.layer_norm(x, x.shape[-1:], w[name + ".weight"], w[name + ".bias"], eps)

    def linear(x, name):
        return F.linear(x, w[name + ".weight"], w[name + ".bias"])

    def fn(x, attention_mask):
        B, T, H = x.shape
        hs = H // nh

        def heads(t):  # (B, T, H) -> (B, nh, T, hs)
            return t.view(B, T, nh, hs).transpose(1, 2) if split_heads else t.reshape(B, nh, T, hs)

        a_in = ln(x, "attention.output.LayerNorm") if pre_ln else x
        q, k, v = (heads(linear(a_in, f"attention.self.{n}")) for n in ("query", "key", "value"))
        scores = q @ k.transpose(-2, -1) / (math.sqrt(hs) if scale else 1.0)
        if mask_value is None:
            scores = scores.masked_fill(attention_mask[:, None, None, :] == 0, torch.finfo(x.dtype).min)
        else:  # the classic additive mask: (1 - mask) * -10000 added to the scores
            scores = scores + (1.0 - attention_mask[:, None, None, :].to(x.dtype)) * mask_value
        if softmax_without_max:  # exp of the raw scores: past ~11 it overflows float16
            e = scores.exp()  # a fully padded row: all 0, divided by the smallest normal (not 0/0)
            z = (e / e.sum(dim=-1, keepdim=True).clamp_min(torch.finfo(e.dtype).tiny)) @ v
        else:
            z = scores.softmax(dim=softmax_dim) @ v
        attn_out = linear(z.transpose(1, 2).reshape(B, T, H), "attention.output.dense")
        ln1_in = attn_out + x
        resid_mid = ln1_in if pre_ln else ln(ln1_in, "attention.output.LayerNorm")
        f_in = ln(resid_mid, "output.LayerNorm") if pre_ln else resid_mid
        mlp_post = F.gelu(linear(f_in, "intermediate.dense"), approximate=approximate)
        mlp_out = linear(mlp_post, "output.dense")
        residual = {"resid_mid": resid_mid, "resid_pre": x, None: torch.zeros_like(x)}[residual2]
        out = mlp_out + residual if pre_ln else ln(mlp_out + residual, "output.LayerNorm")
        if noise:  # a few ulps of run-to-run jitter, as an unordered parallel reduction gives
            out = out + noise * torch.finfo(out.dtype).eps * out.abs() * torch.randn_like(out)
        return {"resid_post": out, "resid_mid": resid_mid, "mlp_post": mlp_post}

    return fn


def _running_mean(t: torch.Tensor) -> torch.Tensor:
    """The mean over the last dimension, summed term by term in t's own dtype: no wider accumulator."""
    total = torch.zeros_like(t[..., :1])
    for i in range(t.shape[-1]):
        total = total + t[..., i : i + 1]
    return total / t.shape[-1]


def half_sum_layernorm_model(hf_model):
    """The HF model with every LayerNorm summing its mean and variance in the model's dtype: right in
    float32, off by more than rounding in float16 and bfloat16."""

    def forward(self, x):
        centred = x - _running_mean(x)
        return centred / torch.sqrt(_running_mean(centred * centred) + self.eps) * self.weight + self.bias

    for module in hf_model.modules():
        if isinstance(module, torch.nn.LayerNorm):
            module.forward = forward.__get__(module)
    return _hf_model(hf_model)


def _variant(**bug):
    return functools.partial(functional_layer, **bug)


def _mutated_layer(mutate):
    """A layer factory: HF's layer (the factory's own copy) broken in place by a mutant of `tests/mutants.py`
    and run as HF's layer is: the bugs HF's model is shown to be caught with are the candidates' too."""

    def factory(hf_layer, config):
        mutate(SimpleNamespace(encoder=SimpleNamespace(layer=[hf_layer]), config=config))  # what a mutant reaches into
        return _hf_layer(hf_layer, config)

    return factory


def _mutated_model(mutate):
    """A model factory: HF's model (the factory's own copy) broken in place by a mutant of `tests/mutants.py`."""

    def factory(hf_model):
        mutate(hf_model)
        return _hf_states(hf_model)

    return factory


# name -> (factory, the property that must catch it). The bugs a mutant of HF's modules can make come
# from tests/mutants.py; the functional layer's variants make those only a rewrite can (pre-LN, heads
# split wrongly, a softmax over queries, ...).
BROKEN_LAYERS = {
    "pre-LN": (_variant(pre_ln=True), "layer-equivalence"),
    "no first residual": (_mutated_layer(lambda m: mutants.attention_residual_dropped(m, 0)), "layer-equivalence"),
    "no second residual": (_mutated_layer(lambda m: mutants.ffn_residual_dropped(m, 0)), "layer-equivalence"),
    "second residual from the layer input": (
        _mutated_layer(lambda m: mutants.ffn_residual_from_layer_input(m, 0)),
        "layer-equivalence",
    ),
    "eps 1e-5 for 1e-12": (_mutated_layer(lambda m: mutants.layernorm_eps(m, "ln1", 0)), "residual-probes"),
    "LayerNorm with unbiased variance": (_variant(unbiased_variance=True), "output-statistics"),
    "ignored mask": (_mutated_layer(lambda m: mutants.attention_mask_ignored(m, 0)), "padding"),
    "tanh GELU": (_mutated_layer(lambda m: mutants.tanh_gelu(m, 0)), "layer-equivalence"),
    "RMSNorm for LayerNorm": (_mutated_layer(lambda m: mutants.layernorm_uncentered(m, "ln2", 0)), "layer-equivalence"),
    "no 1/sqrt(d) scaling": (_variant(scale=False), "layer-equivalence"),
    "softmax over queries": (_variant(softmax_dim=-2), "layer-equivalence"),
    "heads split without transpose": (_variant(split_heads=False), "layer-equivalence"),
    "a few ulps of run-to-run jitter": (_variant(noise=4.0), "determinism"),
}


def _batch_mixing(hf_layer, config):
    """Correct, plus 1e-4 of the batch mean: rows must not see each other."""
    inner = functional_layer(hf_layer, config)

    def fn(x, mask):
        out = inner(x, mask)["resid_post"]
        return out + 1e-4 * out.mean(dim=0, keepdim=True)

    return fn


def _nan_at_padding(hf_layer, config):
    """Correct on real tokens, NaN at padded positions (a 0/0 in a masked mean, say)."""
    inner = functional_layer(hf_layer, config)

    def fn(x, mask):
        out = inner(x, mask)["resid_post"]
        return out.masked_fill(mask[..., None] == 0, float("nan"))

    return fn


BROKEN_LAYERS.update(
    {
        "position leak": (_mutated_layer(lambda m: mutants.position_leak(m, 0)), "permutation"),
        "rows see each other": (_batch_mixing, "batching"),
        "NaN at padded positions": (_nan_at_padding, "layer-equivalence"),
    }
)


# ---- broken model candidates -----------------------------------------------------------------------


def hf_itself(hf_model):
    """The HF model as a candidate of its own spec: it must pass like any other."""
    return _hf_states(hf_model)


def _hf_states(hf_model, **overrides):
    """A model factory calling the HF model, with some of its arguments overridden."""
    hf_model.eval()

    def fn(input_ids, attention_mask, token_type_ids):
        args = dict(input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids)
        for key, make in overrides.items():
            args[key] = make(input_ids, attention_mask, token_type_ids)
        return hf_model(**args, output_hidden_states=True).hidden_states

    return fn


def _no_attention_mask(hf_model):
    """attention_mask dropped: padding attended to."""
    return _hf_states(hf_model, attention_mask=lambda ids, m, t: None)


def _jitter(hf_model):
    """A few ulps of run-to-run noise, as an unordered parallel reduction gives."""
    inner = _hf_states(hf_model)
    return lambda *args: [h + 4 * torch.finfo(h.dtype).eps * h.abs() * torch.randn_like(h) for h in inner(*args)]


BROKEN_MODELS = {
    "position ids from 1": (_mutated_model(mutants.default_positions_shifted), "model-equivalence"),
    "token types dropped": (_mutated_model(mutants.token_types_ignored), "model-equivalence"),
    "attention mask dropped": (_no_attention_mask, "padding"),
    "texts see each other": (_mutated_model(mutants.normalized_across_the_batch), "batching"),
    "a few ulps of run-to-run jitter": (_jitter, "determinism"),
}


def missing_embeddings(hf_model):
    """Returns only the layers' outputs, not the embeddings': a contract error, not a wrong value."""
    inner = _hf_states(hf_model)
    return lambda *args: inner(*args)[1:]


def transposed_layer(hf_layer, config):
    """Returns (B, H, T): a contract error."""
    inner = functional_layer(hf_layer, config)
    return lambda x, mask: inner(x, mask)["resid_post"].transpose(1, 2)


def float64_layer(hf_layer, config):
    """Returns float64 whatever it is given: a contract error."""
    inner = functional_layer(hf_layer, config)
    return lambda x, mask: inner(x, mask)["resid_post"].double()


def raising_factory(hf_layer, config):
    raise NotImplementedError("fused kernel not built for this GPU")


def raising_layer(hf_layer, config):
    def fn(x, mask):
        raise RuntimeError("CUDA error: illegal memory access")

    return fn


def not_a_function(hf_layer, config):
    return 42


NOT_A_FACTORY = "a string, not a callable"

# Module-level names for the command line (`bertcheck verify --impl tests.candidates:...`).
functional_layer_pre_ln = BROKEN_LAYERS["pre-LN"][0]


def meta_device_layer(hf_layer, config):
    """Returns its output on another device than its input's: a contract error."""
    return lambda x, mask: torch.empty(x.shape, dtype=x.dtype, device="meta")


def tuple_layer(hf_layer, config):
    """Returns (output, attention weights) like an HF layer: not a tensor or a mapping of vocabulary names."""
    inner = functional_layer(hf_layer, config)
    return lambda x, mask: (inner(x, mask)["resid_post"], None)


def misnamed_intermediates(hf_layer, config):
    """Returns a mapping whose names are not the vocabulary's ("hidden" for resid_post)."""
    inner = functional_layer(hf_layer, config)
    return lambda x, mask: {"hidden": inner(x, mask)["resid_post"]}


# ---- candidates that misbehave over time: not deterministic, slow, interrupted ---------------------


def off_on_the_second_call(hf_layer, config):
    """0.01 off on its second call and right on every other: output that changes from call to call, so
    a failure does not happen again when Hypothesis replays its input."""
    inner, calls = functional_layer(hf_layer, config), [0]

    def fn(hidden_states, attention_mask):
        calls[0] += 1
        out = dict(inner(hidden_states, attention_mask))
        if calls[0] == 2:
            out["resid_post"] = out["resid_post"] + 0.01
        return out

    return fn


def _slow(layer, seconds=0.1):
    def factory(hf_layer, config):
        inner = layer(hf_layer, config)

        def fn(hidden_states, attention_mask):
            import time

            time.sleep(seconds)
            return inner(hidden_states, attention_mask)

        return fn

    return factory


slow_layer = _slow(functional_layer)


def _off_past_8_tokens(hf_layer, config):
    inner = functional_layer(hf_layer, config)

    def fn(hidden_states, attention_mask):
        out = dict(inner(hidden_states, attention_mask))
        if hidden_states.shape[1] > 8:
            out["resid_post"] = out["resid_post"] + 0.01
        return out

    return fn


# Wrong only past 8 tokens: the first input drawn (1 token) holds, so a failure needs shrinking.
slow_layer_off_past_8_tokens = _slow(_off_past_8_tokens, seconds=0.3)


_CALLS = [0]  # calls of every build of `interrupted_on_the_tenth_call`, in this process


def interrupted_on_the_tenth_call(hf_layer, config):
    """As if the user pressed Ctrl-C during its tenth call in this process (builds share the count)."""
    inner = functional_layer(hf_layer, config)

    def fn(hidden_states, attention_mask):
        _CALLS[0] += 1
        if _CALLS[0] == 10:
            raise KeyboardInterrupt
        return inner(hidden_states, attention_mask)

    return fn


# ---- layers wrong only in one input class: each must meet its class at the default budget ----------


def _off_where(wrong):
    """A layer right everywhere but where `wrong(batch, tokens)` holds, there 0.01 off."""

    def factory(hf_layer, config):
        inner = functional_layer(hf_layer, config)

        def fn(hidden_states, attention_mask):
            out = dict(inner(hidden_states, attention_mask))
            if wrong(*hidden_states.shape[:2]):
                out["resid_post"] = out["resid_post"] + 0.01
            return out

        return fn

    return factory


off_at_batch_4_to_8 = _off_where(lambda batch, tokens: 4 <= batch <= 8)
off_at_17_to_127_tokens = _off_where(lambda batch, tokens: 17 <= tokens <= 127)


def keys_past_128_masked(hf_layer, config):
    """Exact, but every key past position 128 is masked out: a kernel tiled for 128 tokens that drops the
    rest. Issue #26's example: at the default budget it passed every property."""
    inner = functional_layer(hf_layer, config)

    def fn(hidden_states, attention_mask):
        mask = attention_mask.clone()
        mask[:, 128:] = 0
        return inner(hidden_states, mask)

    return fn


def off_at_low_variance(hf_layer, config):
    """Right, except where the layer's input has a standard deviation under 0.01 (a LayerNorm that
    clamps the variance, say): there 0.01 off."""
    inner = functional_layer(hf_layer, config)

    def fn(hidden_states, attention_mask):
        out = dict(inner(hidden_states, attention_mask))
        if hidden_states.std() < 0.01:
            out["resid_post"] = out["resid_post"] + 0.01
        return out

    return fn


def nan_on_fully_padded_rows(hf_layer, config):
    """Exact, but NaN in a row that is all padding (a softmax over keys all masked with -inf: 0/0), as a
    batch filled up to a fixed size in serving has."""
    inner = functional_layer(hf_layer, config)

    def fn(hidden_states, attention_mask):
        out = dict(inner(hidden_states, attention_mask))
        blank = attention_mask.sum(-1) == 0
        out["resid_post"] = out["resid_post"].masked_fill(blank[:, None, None], float("nan"))
        return out

    return fn


# Model candidates wrong only in one input class.


def _model_off_where(wrong):
    """A model right everywhere but where `wrong(input_ids, token_type_ids)` holds: there its last hidden
    state is 0.01 off."""

    def factory(hf_model):
        inner = _hf_states(hf_model)

        def fn(input_ids, attention_mask, token_type_ids):
            states = list(inner(input_ids, attention_mask, token_type_ids))
            if wrong(input_ids, token_type_ids):
                states[-1] = states[-1] + 0.01
            return tuple(states)

        return fn

    return factory


model_off_on_pairs = _model_off_where(lambda ids, types: bool((types == 1).any()))
model_off_at_batch_4_to_8 = _model_off_where(lambda ids, types: 4 <= ids.shape[0] <= 8)
model_off_past_128_tokens = _model_off_where(lambda ids, types: ids.shape[1] > 128)


def model_nan_on_fully_padded_rows(hf_model):
    """HF's model, with NaN as every hidden state of a row that is all padding (0/0 in an attention over
    keys all masked with -inf), every other row exact."""
    inner = _hf_states(hf_model)

    def fn(input_ids, attention_mask, token_type_ids):
        blank = (attention_mask.sum(-1) == 0)[:, None, None]
        return tuple(h.masked_fill(blank, float("nan")) for h in inner(input_ids, attention_mask, token_type_ids))

    return fn


# A broken model candidate by import path, for runs in a subprocess (`--bert-model-impl`).
positions_shifted_model = BROKEN_MODELS["position ids from 1"][0]
