"""Deliberately broken BERTs: each breaks one fact of the architecture, in place, on an HF BertModel.

Each swaps a module's class for a subclass (or changes one attribute), so the break survives
`copy.deepcopy` and works on transformers 4.33 and 5.x alike.
"""

import torch
from torch import nn

from bertcheck.tools import planted


def _swap_class(module: nn.Module, name: str, **methods) -> None:
    stock = module.__class__
    module.__class__ = type(name, (stock,), methods)
    try:  # 5.x records a model's hidden states by hooks it registers for the model's class, by name
        from transformers.utils.output_capturing import _CAN_RECORD_REGISTRY
    except ImportError:  # 4.x: the forward returns them itself
        return
    if dict.get(_CAN_RECORD_REGISTRY, str(stock)) is not None:
        _CAN_RECORD_REGISTRY[module] = dict.get(_CAN_RECORD_REGISTRY, str(stock))


def attention_residual_dropped(model, layer: int) -> None:
    """BertSelfOutput computes LN1(attn_out) instead of LN1(attn_out + resid_pre)."""

    def forward(self, hidden_states, input_tensor):
        return self.LayerNorm(self.dropout(self.dense(hidden_states)))

    _swap_class(model.encoder.layer[layer].attention.output, "NoResidualSelfOutput", forward=forward)


def ffn_residual_dropped(model, layer: int) -> None:
    """BertOutput computes LN2(mlp_out) instead of LN2(mlp_out + resid_mid)."""

    def forward(self, hidden_states, input_tensor):
        return self.LayerNorm(self.dropout(self.dense(hidden_states)))

    _swap_class(model.encoder.layer[layer].output, "NoResidualOutput", forward=forward)


def ffn_residual_from_layer_input(model, layer: int) -> None:
    """The classic slip: the second residual is the layer input, not the first LayerNorm's output."""
    block = model.encoder.layer[layer]

    def stash(module, args, kwargs):  # `module`, not `block`: deep copies of the layer must stash on themselves
        module.output._layer_input = args[0] if args else kwargs["hidden_states"]

    block.register_forward_pre_hook(stash, with_kwargs=True)

    def forward(self, hidden_states, input_tensor):
        return self.LayerNorm(self.dropout(self.dense(hidden_states)) + self._layer_input)

    _swap_class(block.output, "LayerInputResidualOutput", forward=forward)


def _layernorm(model, where: str, layer: int):
    if where == "embeddings":
        return model.embeddings.LayerNorm
    block = model.encoder.layer[layer]
    return block.attention.output.LayerNorm if where == "ln1" else block.output.LayerNorm


def layernorm_uncentered(model, where: str, layer: int = 0) -> None:
    """RMSNorm where BERT has LayerNorm: scaled by the root mean square, the mean never subtracted."""

    def forward(self, x):
        return x / torch.sqrt((x * x).mean(-1, keepdim=True) + self.eps) * self.weight + self.bias

    _swap_class(_layernorm(model, where, layer), "UncenteredLayerNorm", forward=forward)


def layernorm_eps(model, where: str, layer: int = 0, eps: float = 1e-5) -> None:
    """A LayerNorm whose eps differs from config.layer_norm_eps (1e-5, PyTorch's default, for 1e-12)."""
    _layernorm(model, where, layer).eps = eps


def layernorm_affine_ignored(model, where: str, layer: int = 0) -> None:
    """A LayerNorm that normalizes but never applies its gain and bias."""

    def forward(self, x):
        return nn.functional.layer_norm(x, self.normalized_shape, None, None, self.eps)

    _swap_class(_layernorm(model, where, layer), "NoAffineLayerNorm", forward=forward)


def tanh_gelu(model, layer: int) -> None:
    """The tanh approximation of GELU where BERT uses the exact (erf) one."""
    model.encoder.layer[layer].intermediate.intermediate_act_fn = nn.GELU(approximate="tanh")


def narrow_ffn(model, layer: int) -> None:
    """A feed-forward of half config.intermediate_size, consistent with itself."""
    block = model.encoder.layer[layer]
    H, half = model.config.hidden_size, model.config.intermediate_size // 2
    dtype = block.intermediate.dense.weight.dtype
    block.intermediate.dense = nn.Linear(H, half).to(dtype)
    block.output.dense = nn.Linear(half, H).to(dtype)


def layer_output_dropped(model, layer: int) -> None:
    """Layer `layer` runs, but its output is thrown away: the next layer gets its input."""

    def forward(self, hidden_states, *args, **kwargs):
        out = type(self).__mro__[1].forward(self, hidden_states, *args, **kwargs)
        return (hidden_states, *out[1:]) if isinstance(out, tuple) else hidden_states

    _swap_class(model.encoder.layer[layer], "DroppedOutputLayer", forward=forward)


def attention_mask_ignored(model, layer: int) -> None:
    """Self-attention that attends to padding."""

    def forward(self, hidden_states, attention_mask=None, *args, **kwargs):
        kwargs.pop("attention_mask", None)
        return type(self).__mro__[1].forward(self, hidden_states, None, *args, **kwargs)

    _swap_class(model.encoder.layer[layer].attention.self, "MaskBlindSelfAttention", forward=forward)


def token_types_ignored(model) -> None:
    """Embeddings that treat every token as segment A."""

    def forward(self, *args, **kwargs):
        kwargs["token_type_ids"] = None
        return type(self).__mro__[1].forward(self, *args, **kwargs)

    _swap_class(model.embeddings, "NoTokenTypeEmbeddings", forward=forward)


def normalized_across_the_batch(model) -> None:
    """An embeddings LayerNorm that centres over the whole batch: a text's output depends on its neighbours."""

    def forward(self, x):
        centred = x - x.mean(dim=(0, -1), keepdim=True)
        return centred / torch.sqrt(centred.pow(2).mean(-1, keepdim=True) + self.eps) * self.weight + self.bias

    _swap_class(model.embeddings.LayerNorm, "BatchLayerNorm", forward=forward)


def default_positions_shifted(model) -> None:
    """Embeddings whose default position_ids start at 1 instead of 0."""

    def forward(self, *args, **kwargs):
        if kwargs.get("position_ids") is None:
            ids = kwargs.get("input_ids", args[0] if args else None)
            kwargs["position_ids"] = torch.arange(1, ids.shape[1] + 1, device=ids.device).expand(ids.shape)
        return type(self).__mro__[1].forward(self, *args, **kwargs)

    _swap_class(model.embeddings, "ShiftedPositionEmbeddings", forward=forward)


def roberta_positions_without_padding_offset(model) -> None:
    """RoBERTa's embeddings count real tokens from 1, forgetting the `+ padding_idx` of
    `create_position_ids_from_input_ids`: every real token one row of the position table too low
    (`padding_idx` 1), padding at row 0. Planted into the member's own embeddings module."""

    def forward(self, *args, **kwargs):
        ids = kwargs.get("input_ids", args[0] if args else None)
        if kwargs.get("position_ids") is None and ids is not None:
            real = ids.ne(self.padding_idx).long()
            kwargs["position_ids"] = torch.cumsum(real, dim=1) * real
        return type(self).__mro__[1].forward(self, *args, **kwargs)

    _swap_class(model.embeddings, "UnpaddedRobertaEmbeddings", forward=forward)


def electra_projection_skipped(model) -> None:
    """ELECTRA-small's embeddings reach the encoder without `embeddings_project`: its dense skipped, the
    embedding_size-wide LayerNorm output zero-padded to the hidden size so that the shapes still fit."""

    def forward(self, x):
        return torch.nn.functional.pad(x, (0, self.out_features - x.shape[-1]))

    _swap_class(model.embeddings_project, "SkippedProjection", forward=forward)


def ernie_task_types_dropped(model) -> None:
    """ERNIE's embeddings forget the task-type embedding its config asks for (`use_task_id`): the
    sum the embedding LayerNorm normalizes lacks row 0 of the task table. Planted into its own module."""
    model.embeddings.use_task_id = False


def copied_second_residual_after_the_norm(output_class) -> None:
    """A release's copy of BertOutput (RoBERTa's, say, "Copied from" BERT's in 4.x, generated from it in
    5.x) that adds the residual after the LayerNorm, not before: LayerNorm(mlp_out) + resid_mid. BERT's
    own BertOutput is left as it is. Patched into the class, so every model of that member has it: undo
    it with `pytest.MonkeyPatch`."""

    def forward(self, hidden_states, input_tensor):
        return self.LayerNorm(self.dropout(self.dense(hidden_states))) + input_tensor

    output_class.forward = forward


def dropout_in_eval(model, layer: int) -> None:
    """A feed-forward that applies dropout whatever the mode: eval forwards stop repeating."""

    def forward(self, hidden_states, input_tensor):
        dense = nn.functional.dropout(self.dense(hidden_states), p=0.1, training=True)
        return self.LayerNorm(dense + input_tensor)

    _swap_class(model.encoder.layer[layer].output, "AlwaysDropoutOutput", forward=forward)


def dropout_on_the_residual_stream(model, layer: int) -> None:
    """Dropout applied after the residual add, so it hits the residual stream too."""

    def forward(self, hidden_states, input_tensor):
        return self.LayerNorm(self.dropout(self.dense(hidden_states) + input_tensor))

    _swap_class(model.encoder.layer[layer].attention.output, "ResidualDropoutSelfOutput", forward=forward)


def different_in_training(model, layer: int) -> None:
    """An intermediate that computes something else in train mode, beyond dropout: invisible to the
    residual adds, which see whatever the sublayers output."""

    def forward(self, hidden_states):
        out = type(self).__mro__[1].forward(self, hidden_states)
        return out * 1.01 if self.training else out

    _swap_class(model.encoder.layer[layer].intermediate, "TrainDriftIntermediate", forward=forward)


def broken_sdpa(monkeypatch) -> None:
    """The sdpa kernel alone is off by 0.1%. Patched where every release calls it: 5.x through its
    attention table, 4.41-4.57 from BertSdpaSelfAttention, both as torch.nn.functional's attribute."""
    original = torch.nn.functional.scaled_dot_product_attention

    def sdpa(*args, **kwargs):
        return original(*args, **kwargs) * 1.001

    monkeypatch.setattr(torch.nn.functional, "scaled_dot_product_attention", sdpa)


def position_leak(model, layer: int) -> None:
    """Self-attention that sees token positions: a layer must have none."""

    def forward(self, hidden_states, *args, **kwargs):
        T = hidden_states.shape[1]
        leaked = (
            hidden_states + 0.1 * torch.arange(T, dtype=hidden_states.dtype, device=hidden_states.device)[None, :, None]
        )
        return type(self).__mro__[1].forward(self, leaked, *args, **kwargs)

    _swap_class(model.encoder.layer[layer].attention.self, "PositionLeakSelfAttention", forward=forward)


def ffn_mixes_tokens(model, layer: int) -> None:
    """A feed-forward that adds the mean over tokens: one token's change reaches all."""

    def forward(self, hidden_states):
        return type(self).__mro__[1].forward(self, hidden_states + hidden_states.mean(dim=1, keepdim=True))

    _swap_class(model.encoder.layer[layer].intermediate, "TokenMixingIntermediate", forward=forward)


def infinite_first_token(model, layer: int) -> None:
    """A feed-forward output that overflows to inf on the first token."""

    def forward(self, hidden_states, input_tensor):
        out = self.LayerNorm(self.dropout(self.dense(hidden_states)) + input_tensor)
        out[:, 0] = float("inf")
        return out

    _swap_class(model.encoder.layer[layer].output, "OverflowingOutput", forward=forward)


def hidden_states_request_changes_the_output(model) -> None:
    """A model whose last_hidden_state shifts when hidden states are requested."""

    def forward(self, *args, output_hidden_states=None, **kwargs):
        out = type(self).__mro__[1].forward(self, *args, output_hidden_states=output_hidden_states, **kwargs)
        if output_hidden_states:
            out.last_hidden_state = out.last_hidden_state + 1e-3
        return out

    _swap_class(model, "FlagSensitiveBertModel", forward=forward)


def layernorm_wrong_backward(model, where: str, layer: int = 0) -> None:
    """A LayerNorm whose forward is exact but whose backward ignores the mean (it is detached), as a
    hand-written kernel with a wrong backward would."""

    def forward(self, x):
        mean = x.mean(-1, keepdim=True).detach()
        var = ((x - mean) ** 2).mean(-1, keepdim=True)
        return (x - mean) / torch.sqrt(var + self.eps) * self.weight + self.bias

    _swap_class(_layernorm(model, where, layer), "WrongBackwardLayerNorm", forward=forward)


# Every layer's (or one layer's) GELU: the forward exact, the backward wrong. It is also the regression
# `bertcheck bench` plants for its failing run, so it lives in the package.
gelu_wrong_backward = planted.gelu_wrong_backward


class _TwiceTheGradient(torch.autograd.Function):
    """The identity forward; a backward that doubles the gradient."""

    @staticmethod
    def forward(ctx, x):
        return x.view_as(x)

    @staticmethod
    def backward(ctx, grad):
        return 2 * grad


def output_bias_gradient_doubled(model, layer: int) -> None:
    """A layer's FFN output dense whose bias gets twice its gradient, every other gradient (the input's
    among them) exact: only that one weight's gradient can show it."""

    def forward(self, hidden_states, input_tensor):
        dense = torch.nn.functional.linear(hidden_states, self.dense.weight) + _TwiceTheGradient.apply(self.dense.bias)
        return self.LayerNorm(self.dropout(dense) + input_tensor)

    _swap_class(model.encoder.layer[layer].output, "BiasGradientDoubled", forward=forward)


def wrong_past_128_tokens(model, layer: int) -> None:
    """A layer's FFN output 0.01 off at every position past 128 and exact before: only an input longer
    than 128 tokens shows it (issue #26: a class drawn by chance could be missing from a whole run)."""

    def forward(self, hidden_states, input_tensor):
        out = type(self).__mro__[1].forward(self, hidden_states, input_tensor)
        if out.shape[1] <= 128:
            return out
        return torch.cat([out[:, :128], out[:, 128:] + 0.01], dim=1)

    _swap_class(model.encoder.layer[layer].output, "WrongPast128Output", forward=forward)


# ---- wrong in one input class only (issue #26): each must meet its class at the default budget ------


def _plus(out, shift):
    """A layer module's output moved by `shift`: the tensor, or the first of a tuple (4.33 returns tuples)."""
    if isinstance(out, tuple):
        return (out[0] + shift, *out[1:])
    return out + shift


def wrong_at_batch_4_to_8(model, layer: int) -> None:
    """A layer's FFN output 0.01 off in a batch of 4 to 8 rows and exact otherwise (a kernel tuned for
    small batches whose large-batch tiling is off, say)."""

    def forward(self, hidden_states, input_tensor):
        out = type(self).__mro__[1].forward(self, hidden_states, input_tensor)
        return out + 0.01 if 4 <= out.shape[0] <= 8 else out

    _swap_class(model.encoder.layer[layer].output, "WrongAtBatch4To8Output", forward=forward)


def wrong_on_pairs(model) -> None:
    """Embeddings 0.01 off in a batch that holds a sentence pair (a second token type), exact otherwise."""

    def forward(self, input_ids=None, token_type_ids=None, *args, **kwargs):
        out = type(self).__mro__[1].forward(self, input_ids, token_type_ids, *args, **kwargs)
        return out + 0.01 if token_type_ids is not None and bool((token_type_ids == 1).any()) else out

    _swap_class(model.embeddings, "WrongOnPairsEmbeddings", forward=forward)


def wrong_at_low_variance(model, layer: int) -> None:
    """A layer's output 0.01 off where its input's standard deviation is under 0.01 (a LayerNorm that
    clamps the variance, say), exact otherwise: only generated low-variance states show it."""

    def forward(self, hidden_states, *args, **kwargs):
        out = type(self).__mro__[1].forward(self, hidden_states, *args, **kwargs)
        return _plus(out, 0.01) if float(hidden_states.std()) < 0.01 else out

    _swap_class(model.encoder.layer[layer], "WrongAtLowVarianceLayer", forward=forward)


def nan_on_fully_padded_rows(model, layer: int) -> None:
    """A layer whose output is NaN in a row that is all padding (a softmax over keys all masked with
    -inf: 0/0), exact in every other row: only a fully padded row shows it."""

    def forward(self, hidden_states, attention_mask=None, *args, **kwargs):
        out = type(self).__mro__[1].forward(self, hidden_states, attention_mask, *args, **kwargs)
        if attention_mask is None:
            return out
        B = hidden_states.shape[0]
        keep = attention_mask if attention_mask.dtype == torch.bool else attention_mask > -1e3
        blank = ~keep.reshape(B, -1).any(-1)
        shift = torch.where(blank, float("nan"), 0.0).to(hidden_states)[:, None, None]
        return _plus(out, shift)

    _swap_class(model.encoder.layer[layer], "NanOnFullyPaddedRowsLayer", forward=forward)


def pooler_without_tanh(model) -> None:
    """A pooler that returns its dense layer's output, without the tanh."""

    def forward(self, hidden_states):
        return self.dense(hidden_states[:, 0])

    _swap_class(model.pooler, "NoTanhPooler", forward=forward)


def pooler_on_the_last_token(model) -> None:
    """A pooler that reads the last position, not the first ([CLS]) token."""

    def forward(self, hidden_states):
        return self.activation(self.dense(hidden_states[:, -1]))

    _swap_class(model.pooler, "LastTokenPooler", forward=forward)


# ---- input forms: each breaks one way of calling BertModel, the plain call (ids, a 2D int64 mask, no_grad,
# output_hidden_states=True, return_dict=True) left bit for bit as it was -------------------------------


def _altered_call(model, name: str, before=None, after=None) -> None:
    """BertModel.forward with its keyword arguments changed by `before(kwargs)` and its output by
    `after(kwargs, out)`: every call of `bertcheck.properties.input_forms` passes keywords."""

    def forward(self, **kwargs):
        kwargs = before(dict(kwargs)) if before else kwargs
        out = type(self).__mro__[1].forward(self, **kwargs)
        return after(kwargs, out) if after else out

    _swap_class(model, name, forward=forward)


def _mask_when(test, change):
    def before(kwargs):
        mask = kwargs.get("attention_mask")
        if mask is not None and test(mask):
            kwargs["attention_mask"] = change(mask)
        return kwargs

    return before


def _when_given(argument: str, change):
    """Changes `argument` (position_ids, head_mask) where the caller gives it, and nothing else."""

    def before(kwargs):
        if kwargs.get(argument) is not None:
            kwargs[argument] = change(kwargs[argument])
        return kwargs

    return before


def _shift_last_state(when):
    def after(kwargs, out):
        if when(kwargs) and not isinstance(out, tuple):
            out.last_hidden_state = out.last_hidden_state + 1e-3
            if out.hidden_states is not None:
                out.hidden_states = (*out.hidden_states[:-1], out.hidden_states[-1] + 1e-3)
        return out

    return after


def _return_tuple_wrong(kwargs, out):
    if kwargs.get("return_dict") is False:
        return (out[2][-2], *out[1:])  # item 0 is the layer before the last
    return out


def _attentions_transposed(kwargs, out):
    if kwargs.get("output_attentions") and out.attentions:
        out.attentions = tuple(a.transpose(-1, -2) for a in out.attentions)
    return out


def _embeds_positions_from_one(kwargs):
    if kwargs.get("inputs_embeds") is not None and kwargs.get("position_ids") is None:
        B, T = kwargs["inputs_embeds"].shape[:2]
        kwargs["position_ids"] = torch.arange(1, T + 1, device=kwargs["inputs_embeds"].device).expand(B, T)
    return kwargs


def _mask_inferred_from_padding(model):
    def before(kwargs):
        if kwargs.get("attention_mask", 0) is None and kwargs.get("input_ids") is not None:
            kwargs["attention_mask"] = (kwargs["input_ids"] != model.config.pad_token_id).long()
        return kwargs

    return before


def _types_ones(kwargs):
    if kwargs.get("token_type_ids", 0) is None and kwargs.get("input_ids") is not None:
        kwargs["token_type_ids"] = torch.ones_like(kwargs["input_ids"])
    return kwargs


def _long_drops_mask(kwargs):
    mask = kwargs.get("attention_mask")
    if mask is not None and mask.dim() == 2 and mask.shape[1] >= 128:
        kwargs["attention_mask"] = torch.ones_like(mask)  # a long-input fast path that forgets the padding
    return kwargs


def _same_for_every_query(mask):
    return mask.dim() == 3 and torch.equal(mask, mask[:, :1].expand_as(mask))


def _padding_dropped_with_ones_heads(kwargs):
    heads = kwargs.get("head_mask")
    if heads is not None and bool((heads == 1).all()):
        kwargs["attention_mask"] = None
    return kwargs


def _off_if_arange(positions):
    arange = torch.arange(positions.shape[1], device=positions.device).expand_as(positions)
    return positions + 1 if torch.equal(positions, arange) else positions


def _first_row(mask):
    return mask[:1].expand_as(mask)


# form key -> (what the mutant does, how to plant it on an HF BertModel)
FORM_BREAKS = {
    "mask-int32": (
        "an int32 mask read as its first row for every row",
        lambda m: _altered_call(m, "Int32Mask", _mask_when(lambda x: x.dtype == torch.int32, _first_row)),
    ),
    "mask-bool": (
        "a boolean mask inverted",
        lambda m: _altered_call(
            m, "BoolMask", _mask_when(lambda x: x.dtype == torch.bool and x.dim() == 2, lambda x: ~x)
        ),
    ),
    "mask-float": (
        "a float 0/1 mask ignored",
        lambda m: _altered_call(
            m, "FloatMask", _mask_when(lambda x: x.is_floating_point() and x.dim() == 2, torch.ones_like)
        ),
    ),
    "mask-3d": (
        "a 3D mask the same for every query taken as 2D from the wrong axis (its first key's column)",
        lambda m: _altered_call(m, "Mask3D", _mask_when(_same_for_every_query, lambda x: x[:, :, 0])),
    ),
    "mask-3d-per-query": (
        "a 3D mask collapsed to its first query's row",
        lambda m: _altered_call(m, "Mask3DRow", _mask_when(lambda x: x.dim() == 3, lambda x: x[:, :1].expand_as(x))),
    ),
    "mask-4d-bool": (
        "a 4D boolean mask inverted",
        lambda m: _altered_call(
            m, "Mask4DBool", _mask_when(lambda x: x.dim() == 4 and x.dtype == torch.bool, lambda x: ~x)
        ),
    ),
    "mask-4d-additive": (
        "a 4D additive mask ignored",
        lambda m: _altered_call(
            m, "Mask4DAdditive", _mask_when(lambda x: x.dim() == 4 and x.is_floating_point(), torch.zeros_like)
        ),
    ),
    "mask-omitted": (
        "an omitted mask inferred from the pad token",
        lambda m: _altered_call(m, "InferredMask", _mask_inferred_from_padding(m)),
    ),
    "token-types-omitted": ("omitted token types default to ones", lambda m: _altered_call(m, "OneTypes", _types_ones)),
    "positions-arange": (
        "explicit position_ids equal to arange taken one off (a fast path for the default positions)",
        lambda m: _altered_call(m, "ArangeOff", _when_given("position_ids", _off_if_arange)),
    ),
    "positions-shifted": (
        "explicit position_ids rebased to start at 0",
        lambda m: _altered_call(m, "RebasedPositions", _when_given("position_ids", lambda p: p - p[:, :1])),
    ),
    "positions-permuted": (
        "explicit position_ids sorted",
        lambda m: _altered_call(m, "SortedPositions", _when_given("position_ids", lambda p: p.sort(dim=1).values)),
    ),
    "inputs-embeds": (
        "positions from 1 when inputs_embeds are given",
        lambda m: _altered_call(m, "EmbedsPositions", _embeds_positions_from_one),
    ),
    "return-tuple": (
        "return_dict=False's first item is the layer before the last",
        lambda m: _altered_call(m, "WrongTuple", after=_return_tuple_wrong),
    ),
    "output-attentions": (
        "attentions returned transposed",
        lambda m: _altered_call(m, "TransposedAttentions", after=_attentions_transposed),
    ),
    "hidden-states-unasked": (
        "last_hidden_state shifted when hidden states are not asked for",
        lambda m: _altered_call(
            m, "UnaskedShift", after=_shift_last_state(lambda k: not k.get("output_hidden_states"))
        ),
    ),
    "head-mask-ones": (
        "an all-ones head_mask routed down a path that drops the padding mask",
        lambda m: _altered_call(m, "OnesHeads", _padding_dropped_with_ones_heads),
    ),
    "head-mask-one-head": (
        "head_mask applied to the heads in reverse order",
        lambda m: _altered_call(m, "ReversedHeads", _when_given("head_mask", lambda h: h.flip(-1))),
    ),
    "inference-mode": (
        "a different output under inference_mode",
        lambda m: _altered_call(
            m, "InferenceDrift", after=_shift_last_state(lambda k: torch.is_inference_mode_enabled())
        ),
    ),
    "grad-enabled": (
        "a different output with grad enabled",
        lambda m: _altered_call(m, "GradDrift", after=_shift_last_state(lambda k: torch.is_grad_enabled())),
    ),
    "padding-max-length": (
        "the padding mask dropped from 128 tokens on",
        lambda m: _altered_call(m, "LongDropsMask", _long_drops_mask),
    ),
}


def albert_every_layer_runs_group_0(model) -> None:
    """ALBERT's encoder runs group 0's shared layer at every layer, where its config has two groups: layers
    from num_hidden_layers / num_hidden_groups on should run group 1's. Planted into its own encoder."""

    def forward(self, *args, **kwargs):
        groups = self.albert_layer_groups
        self.albert_layer_groups = nn.ModuleList([groups[0]] * len(groups))
        try:
            return type(self).__mro__[1].forward(self, *args, **kwargs)
        finally:
            self.albert_layer_groups = groups

    _swap_class(model.encoder, "GroupZeroAlbertTransformer", forward=forward)


def distilbert_mask_inverted(model) -> None:
    """DistilBERT's model attends to padding and masks the real tokens: its attention mask read the other
    way round (the `mask == 0` of its 4.x attention taken for the tokens to keep). Planted into its own
    model class, at the mask it is handed, so it holds on every transformers and attention implementation;
    a batch without padding masks every token, and attends uniformly."""

    def forward(self, *args, **kwargs):
        mask = kwargs.get("attention_mask", args[1] if len(args) > 1 else None)
        if mask is not None and mask.dim() == 2:
            inverted = (1 - mask.long()).to(mask.dtype)
            if len(args) > 1:
                args = (args[0], inverted, *args[2:])
            else:
                kwargs["attention_mask"] = inverted
        return type(self).__mro__[1].forward(self, *args, **kwargs)

    _swap_class(model, "InvertedMaskDistilBertModel", forward=forward)
