"""BERT from scratch in plain torch ops: the spec every check compares against.

Weights are read key-for-key from the HF model's ``state_dict`` (so a checkpoint loads with no
renaming), and every hyperparameter comes from the **config**, never from an HF module: a regression
inside `transformers` (a wrong eps, a changed activation) cannot hide in both sides. No HF module's
forward is ever called here.

Shapes: B batch, T tokens, H hidden_size, nh heads, hs = H // nh, I intermediate_size; E the embeddings'
width, H but for a family member that projects them (ELECTRA-small's embedding_size).
"""

from __future__ import annotations

import copy
import math

import torch

from bertcheck.spec.family import SEQUENTIAL, adds_task_types, embedding_width, of_config, spec_config
from bertcheck.spec.names import layer_name


def layer_norm(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor, eps: float) -> torch.Tensor:
    """Normalize over the last dimension (biased variance, eps inside the root), then scale and shift."""
    mean = x.mean(dim=-1, keepdim=True)
    var = ((x - mean) ** 2).mean(dim=-1, keepdim=True)
    return (x - mean) / torch.sqrt(var + eps) * weight + bias


def gelu(x: torch.Tensor) -> torch.Tensor:
    """Exact GELU, x * Phi(x), with the erf form of the normal CDF (BERT's `hidden_act="gelu"`)."""
    return 0.5 * x * (1.0 + torch.erf(x / math.sqrt(2.0)))


def gelu_tanh(x: torch.Tensor) -> torch.Tensor:
    """The tanh approximation of GELU (`gelu_new`, `gelu_pytorch_tanh`, ...): not BERT's, but configurable."""
    return 0.5 * x * (1.0 + torch.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * x**3)))


def _softplus(x: torch.Tensor) -> torch.Tensor:
    """log(1 + e^x), and x itself past 20 as torch's softplus (which transformers uses) defines it."""
    return torch.where(x > 20, x, torch.log1p(torch.exp(torch.clamp(x, max=20))))


# The most (rows, nh, T, T) attention scores `ReferenceBert.layer_keeping` computes at once: one row of
# bert-base at 512 tokens in float64 is 25 MB, so such rows run one at a time; up to ~250 tokens in
# float32 the whole default batch runs as one (no slower than `layer`).
CHUNK_BYTES = 32 * 2**20

# Every `hidden_act` a BERT config can name that has no weights of its own, each from its formula (the
# names are transformers'; `bertcheck.subjects.audit.ACTIVATIONS` lists the same ones and refuses the rest).
ACTIVATIONS = {
    "gelu": gelu,
    "gelu_python": gelu,  # the same erf GELU, written in Python by transformers
    "gelu_10": lambda x: torch.clamp(gelu(x), -10.0, 10.0),  # clipped for quantization
    "gelu_new": gelu_tanh,
    # The same tanh form with sqrt(2/pi) cut to 0.7978845608: 2e-11 off gelu_new, which float64 sees.
    "gelu_fast": lambda x: 0.5 * x * (1.0 + torch.tanh(0.7978845608 * x * (1.0 + 0.044715 * x * x))),
    "gelu_accurate": gelu_tanh,
    "gelu_pytorch_tanh": gelu_tanh,
    "gelu_python_tanh": gelu_tanh,
    "quick_gelu": lambda x: x * torch.sigmoid(1.702 * x),
    "relu": lambda x: torch.clamp(x, min=0),
    "relu2": lambda x: torch.clamp(x, min=0) ** 2,
    "relu6": lambda x: torch.clamp(x, 0.0, 6.0),
    "leaky_relu": lambda x: torch.where(x >= 0, x, 0.01 * x),  # torch's default slope, which transformers uses
    "silu": lambda x: x * torch.sigmoid(x),
    "swish": lambda x: x * torch.sigmoid(x),
    "mish": lambda x: x * torch.tanh(_softplus(x)),
    "sigmoid": torch.sigmoid,
    "tanh": torch.tanh,
    "hardswish": lambda x: x * torch.clamp(x + 3.0, 0.0, 6.0) / 6.0,
    "laplace": lambda x: 0.5 * (1.0 + torch.erf((x - 0.707107) / (0.282095 * math.sqrt(2.0)))),
    "sqrtsoftplus": lambda x: torch.sqrt(_softplus(x)),
    "linear": lambda x: x,
}


def normalized_moments(z: torch.Tensor, x: torch.Tensor, eps: float) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Per token, in float64: the mean and the variance of a LayerNorm's normalized value `z`, and the
    variance it must have, v / (v + eps) with v the (biased) variance of its input `x`. (Its mean must be 0.)"""
    z, v = z.double(), x.double().var(dim=-1, unbiased=False)
    return z.mean(dim=-1), z.var(dim=-1, unbiased=False), v / (v + eps)


def additive_mask(attention_mask: torch.Tensor, dtype: torch.dtype, value: float | None = None) -> torch.Tensor:
    """(B, T) of 1/0 -> (B, 1, 1, T), or a per-query (B, T, T) -> (B, 1, T, T): 0 for keys to attend,
    the dtype's most negative value (or `value`) for padding."""
    keep = (attention_mask[:, None, None, :] if attention_mask.dim() == 2 else attention_mask[:, None]).to(dtype)
    return (1.0 - keep) * (torch.finfo(dtype).min if value is None else value)


class ReferenceBert:
    """The reference model: tensors taken from an HF `BertModel`, hyperparameters from its config."""

    def __init__(
        self,
        state_dict: dict[str, torch.Tensor],
        config,
        *,
        dtype=None,
        device=None,
        embeddings: bool = True,
        lazy: bool = False,
        _weights: dict[str, torch.Tensor] | None = None,
    ):
        config = spec_config(config)  # BERT's field names, where a member keeps them elsewhere (DistilBERT)
        if config.hidden_act not in ACTIVATIONS:
            raise ValueError(f"hidden_act={config.hidden_act!r} is not one of {sorted(ACTIVATIONS)}")
        if config.hidden_size % config.num_attention_heads:
            raise ValueError(
                f"hidden_size={config.hidden_size} is not a multiple of {config.num_attention_heads} heads"
            )
        self.positions = getattr(config, "position_embedding_type", None) or "absolute"  # 5.x configs may lack it
        if self.positions not in ("absolute", "relative_key", "relative_key_query"):
            raise ValueError(f"position_embedding_type={self.positions!r} is not one of BERT's")
        self.config = config
        self.member = of_config(config)  # which of BERT's family: its positions, where it keeps its weights
        self.padding_idx = getattr(config, "pad_token_id", None)
        self.projects = self.member.projects(config)  # embeddings at embedding_size, then a dense to H
        self.task_types = self.member.adds_task_types(config)  # ERNIE's use_task_id
        if self.member.positions != SEQUENTIAL and self.padding_idx is None:
            raise ValueError(f"a {self.member.model_type} config needs pad_token_id: its positions count from it")
        self.n_layers = config.num_hidden_layers
        self.n_heads = config.num_attention_heads
        self.head_size = config.hidden_size // config.num_attention_heads
        self.eps = config.layer_norm_eps
        self.act = ACTIVATIONS[config.hidden_act]
        shapes = _expected_shapes(config, embeddings=embeddings)
        if _weights is not None:  # `aliasing`: the tensors themselves, checked but not detached
            self.w = {
                key: _weights[self._source(key)]
                for key, shape in shapes
                if self._take(_weights, key, shape, None, None) is not None
            }
        elif lazy:  # the tensors as they are, each converted when read
            self.w = _Converted(
                {key: self._take(state_dict, key, shape, None, None) for key, shape in shapes}, dtype, device
            )
        else:
            self.w = {key: self._take(state_dict, key, shape, dtype, device) for key, shape in shapes}
        # The pooler, where the model has one (`BertModel(add_pooling_layer=False)` has none).
        source = state_dict if _weights is None else _weights
        self.has_pooler = embeddings and self._source("pooler.dense.weight") in source
        if self.has_pooler:
            H = config.hidden_size
            for key, shape in (("pooler.dense.weight", (H, H)), ("pooler.dense.bias", (H,))):
                if _weights is not None:
                    self.w[key] = _weights[self._source(key)]
                elif lazy:
                    dict.__setitem__(self.w, key, self._take(source, key, shape, None, None))
                else:
                    self.w[key] = self._take(source, key, shape, dtype, device)
        # What the spec says, as knobs only `bertcheck.spec.deviations` turns (`deviating`): each known way an
        # engine departs from BERT, run to name the one a failing candidate's outputs match.
        self.mask_value: float | None = None  # None: the dtype's most negative value
        self.scaled = True  # scores times 1/sqrt(hs)
        self.pre_ln = False  # LayerNorm before each sublayer, not after its residual add
        self.token_types = True  # token_type_ids read (False: every token is type 0, as if none were given)
        self.position_offset = 0  # position ids start here
        self.pooler_tanh = True

    @classmethod
    def from_hf(cls, model, *, dtype=None, device=None, lazy: bool = False) -> "ReferenceBert":
        """The reference over `model`'s tensors, converted to `dtype` and `device` once (sharing them where
        nothing changes), or with `lazy` on each read: a float64 reference of bert-base without 0.9 GB."""
        return cls(model.state_dict(), model.config, dtype=dtype, device=device, lazy=lazy)

    @classmethod
    def aliasing(cls, model) -> "ReferenceBert":
        """The reference over `model`'s own storage, each weight a new leaf that requires grad: no copy
        of the weights, and a backward through the reference fills its own `.grad` fields, not `model`'s."""
        aliases = {key: p.detach().requires_grad_(True) for key, p in model.named_parameters()}
        return cls({}, model.config, dtype=None, device=None, _weights=aliases)

    @classmethod
    def single_layer(cls, hf_layer, config, *, dtype=None) -> "ReferenceBert":
        """The reference of one HF `BertLayer`, as its layer 0 (no embeddings): for `.layer(0, ...)`; its
        weights converted to `dtype` (None: as they are)."""
        one = copy.copy(spec_config(config))
        one.num_hidden_layers = 1
        if hasattr(one, "num_hidden_groups"):  # ALBERT: the one layer is its own group's
            one.num_hidden_groups = 1
        at = of_config(one).layer_path(one, 0)
        state = {f"{at}.{k}": v for k, v in hf_layer.state_dict().items()}
        return cls(state, one, embeddings=False, dtype=dtype)

    def deviating(self, **knobs) -> "ReferenceBert":
        """This reference with some of its knobs turned (`eps`, `act`, `mask_value`, `scaled`, `pre_ln`,
        `token_types`, `position_offset`, `pooler_tanh`; `member`, whose positions it numbers, and
        `task_types`, ERNIE's), sharing its weights: a known deviation from BERT."""
        other = copy.copy(self)
        for name, value in knobs.items():
            if not hasattr(self, name):
                raise AttributeError(f"the reference has no knob {name!r}")
            setattr(other, name, value)
        return other

    def _source(self, key: str) -> str:
        """The model's `state_dict` key of BERT's `key`: the same but for a member that keeps its weights
        elsewhere (ALBERT's groups: every layer of a group reads one tensor, shared, never copied)."""
        return self.member.weight_key(self.config, key)

    def sources(self) -> dict[str, str]:
        """The model's `state_dict` key of each weight the reference reads -> the first of BERT's keys that
        reads it (ALBERT's shared weights: the first layer of their group)."""
        found: dict[str, str] = {}
        for key in self.w:
            found.setdefault(self._source(key), key)
        return found

    def _take(self, state_dict, key, shape, dtype, device) -> torch.Tensor:
        source = self._source(key)
        if source not in state_dict:
            raise KeyError(f"the model has no weight {source!r}: is it a {self.member.model_class}?")
        tensor = state_dict[source]
        if tuple(tensor.shape) != shape:
            raise ValueError(f"weight {source!r} has shape {tuple(tensor.shape)}, the config implies {shape}")
        return tensor.detach().to(dtype=dtype or tensor.dtype, device=device or tensor.device)

    # ---- embeddings -----------------------------------------------------------------------------
    def embed(
        self, input_ids, token_type_ids=None, position_ids=None, inputs_embeds=None, task_type_ids=None
    ) -> dict[str, torch.Tensor]:
        """Word + position + token type (+ ERNIE's task type) embeddings, then LayerNorm. `inputs_embeds`
        (B, T, H) stands in for the word embeddings when given (to differentiate with respect to them).
        Position ids, when not given, are the family member's (`bertcheck.spec.family`): RoBERTa's skip
        padding and, with `inputs_embeds`, count from padding_idx + 1 as its model does with no ids to look
        at. `task_type_ids`: ERNIE's, with `use_task_id` (None: task 0 everywhere, as transformers has it)."""
        w = self.w
        B, T = input_ids.shape
        if token_type_ids is None or not self.token_types:
            token_type_ids = torch.zeros_like(input_ids)
        if position_ids is None:
            embeds = inputs_embeds is not None
            position_ids = (
                self.member.position_ids(input_ids, self.padding_idx, embeds=embeds) + self.position_offset
            ).clamp(max=self.config.max_position_embeddings - 1)
        tokens = (
            self._rows("embeddings.word_embeddings.weight", input_ids) if inputs_embeds is None else inputs_embeds
        )  # (B, T, H)
        acts = {"embed.tokens": tokens}
        ln_in = tokens
        if self.member.token_types:  # DistilBERT has none
            acts["embed.token_types"] = self._rows("embeddings.token_type_embeddings.weight", token_type_ids)  # (B,T,H)
            ln_in = ln_in + acts["embed.token_types"]  # (B, T, H)
        if self.positions == "absolute":  # relative positions enter each layer's attention scores instead
            acts["embed.positions"] = self._rows("embeddings.position_embeddings.weight", position_ids)  # (B, T, H)
            ln_in = ln_in + acts["embed.positions"]
        if self.task_types:  # ERNIE with use_task_id: task 0 where the call names none, as transformers does
            tasks = torch.zeros_like(input_ids) if task_type_ids is None else task_type_ids
            acts["embed.task_types"] = self._rows("embeddings.task_type_embeddings.weight", tasks)  # (B, T, E)
            ln_in = ln_in + acts["embed.task_types"]
        out = layer_norm(ln_in, w["embeddings.LayerNorm.weight"], w["embeddings.LayerNorm.bias"], self.eps)
        if self.projects:  # ELECTRA-small: embeddings at embedding_size, mapped to the hidden size
            acts["embed.ln_out"] = out  # (B, T, E)
            out = self._linear(self.member.projection, out)  # (B, T, H)
        return {**acts, "embed.ln_in": ln_in, "embed.out": out}

    def _rows(self, key: str, index: torch.Tensor) -> torch.Tensor:
        """Rows `index` of embedding table `key` (a lazy reference converts those rows only, not the table)."""
        if isinstance(self.w, _Converted):
            return self.w.rows(key, index)
        return self.w[key][index]

    # ---- one encoder layer ----------------------------------------------------------------------
    def layer(
        self, i: int, resid_pre: torch.Tensor, attention_mask: torch.Tensor, head_mask: torch.Tensor | None = None
    ) -> dict[str, torch.Tensor]:
        """Layer `i` applied to `resid_pre` (B, T, H) with a (B, T) 1/0 mask, or a (B, T, T) one per query;
        every intermediate, by name. `head_mask` (nh,): each head's pattern times its entry, as HF's."""
        if self.pre_ln:
            return self._pre_ln_layer(i, resid_pre, attention_mask)
        p = f"encoder.layer.{i}."
        w = self.w
        linear = lambda x, name: self._linear(p + name, x)  # noqa: E731

        local = self._attention(i, resid_pre, attention_mask, head_mask)
        attn_out = local["attn_out"]

        # first add & norm (BertSelfOutput): normalize after the residual add
        ln1_in = attn_out + resid_pre  # (B, T, H)
        resid_mid = layer_norm(
            ln1_in, w[p + "attention.output.LayerNorm.weight"], w[p + "attention.output.LayerNorm.bias"], self.eps
        )

        # feed-forward: H -> I -> H
        mlp_pre = linear(resid_mid, "intermediate.dense")  # (B, T, I)
        mlp_post = self.act(mlp_pre)  # (B, T, I)
        mlp_out = linear(mlp_post, "output.dense")  # (B, T, H)

        # second add & norm (BertOutput): the residual is the first LayerNorm's *output*
        ln2_in = mlp_out + resid_mid  # (B, T, H)
        resid_post = layer_norm(ln2_in, w[p + "output.LayerNorm.weight"], w[p + "output.LayerNorm.bias"], self.eps)

        local = dict(
            resid_pre=resid_pre,
            **local,
            ln1_in=ln1_in,
            resid_mid=resid_mid,
            mlp_pre=mlp_pre,
            mlp_post=mlp_post,
            mlp_out=mlp_out,
            ln2_in=ln2_in,
            resid_post=resid_post,
        )
        return {layer_name(i, name): value for name, value in local.items()}

    def _attention(
        self, i: int, x: torch.Tensor, attention_mask: torch.Tensor, head_mask: torch.Tensor | None = None
    ) -> dict[str, torch.Tensor]:
        """Layer `i`'s multi-head self-attention on `x` (B, T, H), through its output dense (`attn_out`);
        every intermediate, by short name. The mask and `head_mask` as for `layer`."""
        p = f"encoder.layer.{i}."
        B, T, H = x.shape
        nh, hs = self.n_heads, self.head_size
        scale = 1.0 / math.sqrt(hs) if self.scaled else 1.0
        linear = lambda x, name: self._linear(p + name, x)  # noqa: E731

        def heads(x):  # (B, T, H) -> (B, nh, T, hs)
            return x.view(B, T, nh, hs).transpose(1, 2)

        q = linear(x, "attention.self.query")  # (B, T, H)
        k = linear(x, "attention.self.key")  # (B, T, H)
        v = linear(x, "attention.self.value")  # (B, T, H)
        mask = additive_mask(attention_mask, x.dtype, self.mask_value)  # (B, 1, 1 or T, T)
        if self.positions == "absolute":
            # mask + q.k^T / sqrt(hs), as one op: the three-op spelling makes two more (B, nh, T, T) passes
            # (5x slower at 512 tokens, and 50 MB of temporaries per layer in float64).
            flat = lambda x: heads(x).reshape(B * nh, T, hs)  # noqa: E731
            attn_scores = torch.baddbmm(
                mask.expand(B, nh, mask.shape[2], T).reshape(B * nh, mask.shape[2], T),
                flat(q),
                flat(k).transpose(1, 2),
                alpha=scale,
            ).view(B, nh, T, T)
        else:
            attn_scores = self._relative_scores(p, heads(q), heads(k)) * scale + mask  # (B, nh, T, T)
        pattern = torch.softmax(attn_scores, dim=-1)  # (B, nh, T, T)
        if head_mask is not None:
            pattern = pattern * head_mask.to(pattern.dtype)[None, :, None, None]
        z = (pattern @ heads(v)).transpose(1, 2).reshape(B, T, H)  # (B, T, H)
        attn_out = linear(z, "attention.output.dense")  # (B, T, H)
        return dict(q=q, k=k, v=v, attn_scores=attn_scores, pattern=pattern, z=z, attn_out=attn_out)

    def _linear(self, key: str, x: torch.Tensor) -> torch.Tensor:
        """x @ W.T + b with the weights under `key`, as one fused op: ~20% faster than the three-op spelling."""
        return torch.nn.functional.linear(x, self.w[key + ".weight"], self.w[key + ".bias"])

    def _pre_ln_layer(self, i: int, resid_pre: torch.Tensor, attention_mask: torch.Tensor) -> dict[str, torch.Tensor]:
        """A pre-LN layer (GPT-2's order, not BERT's) over the same weights: each LayerNorm on a sublayer's
        input, the residual added after. Only its output is named: its intermediates mean other things."""
        p, w = f"encoder.layer.{i}.", self.w
        ln1 = layer_norm(
            resid_pre, w[p + "attention.output.LayerNorm.weight"], w[p + "attention.output.LayerNorm.bias"], self.eps
        )
        resid_mid = resid_pre + self._attention(i, ln1, attention_mask)["attn_out"]
        ln2 = layer_norm(resid_mid, w[p + "output.LayerNorm.weight"], w[p + "output.LayerNorm.bias"], self.eps)
        mlp_post = self.act(self._linear(p + "intermediate.dense", ln2))
        return {layer_name(i, "resid_post"): resid_mid + self._linear(p + "output.dense", mlp_post)}

    def layer_keeping(
        self,
        i: int,
        resid_pre: torch.Tensor,
        attention_mask: torch.Tensor,
        names,
        head_mask: torch.Tensor | None = None,
    ) -> dict:
        """Layer `i` as `layer`, keeping only the activations `names` (full names), run a few rows at a
        time where its (rows, nh, T, T) scores would pass `CHUNK_BYTES`: at 512 tokens in float64 one row's
        every activation is ~105 MB, so a batch of 2 held 210 MB at once where only its kept outputs outlive
        the layer. Rows are independent in BERT; an input that small is run whole, as `layer` runs it."""
        B, T = attention_mask.shape[0], attention_mask.shape[-1]
        per_row = self.n_heads * T * T * resid_pre.element_size()
        step = max(1, CHUNK_BYTES // per_row)
        names = set(names)
        parts = []
        for start in range(0, B, step):
            rows = slice(start, start + step)
            acts = self.layer(i, resid_pre[rows], attention_mask[rows], head_mask)
            parts.append({name: value for name, value in acts.items() if name in names})
            del acts
        if len(parts) == 1:
            return parts[0]
        return {name: torch.cat([part[name] for part in parts]) for name in parts[0]}

    # ---- the pooler ---------------------------------------------------------------------------------
    def pool(self, last_hidden_state: torch.Tensor) -> dict[str, torch.Tensor]:
        """BertPooler: the first token's last hidden state through dense and tanh; (B, H) each."""
        if not self.has_pooler:
            raise ValueError("the model has no pooler (pooler.dense.weight is not in its state_dict)")
        pre = self._linear("pooler.dense", last_hidden_state[:, 0])
        return {"pooler.pre": pre, "pooler.out": torch.tanh(pre) if self.pooler_tanh else pre}

    def _relative_scores(self, p: str, q: torch.Tensor, k: torch.Tensor) -> torch.Tensor:
        """q.k plus the learned score of each query-key distance (Shaw et al.; Huang et al. for
        `relative_key_query`), before the 1/sqrt(hs) scale. q, k: (B, nh, T, hs)."""
        T = q.shape[2]
        offsets = torch.arange(T, device=q.device)
        distance = offsets[:, None] - offsets[None, :]  # (T, T): query position minus key position
        table = self.w[p + "attention.self.distance_embedding.weight"]  # (2 * max_positions - 1, hs)
        d = table[distance + self.config.max_position_embeddings - 1]  # (T, T, hs)
        scores = q @ k.transpose(-2, -1) + torch.einsum("bhqd,qkd->bhqk", q, d)  # (B, nh, T, T)
        if self.positions == "relative_key_query":
            scores = scores + torch.einsum("bhkd,qkd->bhqk", k, d)
        return scores

    # ---- the whole encoder ----------------------------------------------------------------------
    @torch.no_grad()
    def forward(self, input_ids, attention_mask=None, token_type_ids=None) -> dict[str, torch.Tensor]:
        """Embeddings then every layer chained on its own output; returns every activation by full name."""
        if attention_mask is None:
            attention_mask = torch.ones_like(input_ids)
        acts = self.embed(input_ids, token_type_ids)
        hidden = acts["embed.out"]
        for i in range(self.n_layers):
            acts.update(self.layer(i, hidden, attention_mask))
            hidden = acts[layer_name(i, "resid_post")]
        return acts


class _Converted(dict):
    """Weights kept as they are and converted to `dtype` on `device` at each read (`ReferenceBert(lazy=True)`)."""

    def __init__(self, tensors: dict[str, torch.Tensor], dtype, device):
        super().__init__(tensors)
        self.dtype, self.device = dtype, device

    def __getitem__(self, key: str) -> torch.Tensor:
        return super().__getitem__(key).to(dtype=self.dtype, device=self.device)

    def rows(self, key: str, index: torch.Tensor) -> torch.Tensor:
        table = super().__getitem__(key)
        return table[index.to(table.device)].to(dtype=self.dtype, device=self.device)


def _expected_shapes(config, embeddings: bool = True):
    """Every weight the reference reads, with the shape the config implies (nanoGPT asserts these first)."""
    H, I = config.hidden_size, config.intermediate_size
    if embeddings:
        E = embedding_width(config)  # H but where the member projects its embeddings (ELECTRA-small)
        yield "embeddings.word_embeddings.weight", (config.vocab_size, E)
        yield "embeddings.position_embeddings.weight", (config.max_position_embeddings, E)
        if of_config(config).token_types:
            yield "embeddings.token_type_embeddings.weight", (config.type_vocab_size, E)
        if adds_task_types(config):
            yield "embeddings.task_type_embeddings.weight", (config.task_type_vocab_size, E)
        yield "embeddings.LayerNorm.weight", (E,)
        yield "embeddings.LayerNorm.bias", (E,)
        if of_config(config).projects(config):  # ELECTRA-small's where E != H; ALBERT's always
            projection = of_config(config).projection
            yield f"{projection}.weight", (H, E)
            yield f"{projection}.bias", (H,)
    for i in range(config.num_hidden_layers):
        p = f"encoder.layer.{i}."
        for name in ("attention.self.query", "attention.self.key", "attention.self.value", "attention.output.dense"):
            yield p + name + ".weight", (H, H)
            yield p + name + ".bias", (H,)
        if getattr(config, "position_embedding_type", None) in ("relative_key", "relative_key_query"):
            yield (
                p + "attention.self.distance_embedding.weight",
                (2 * config.max_position_embeddings - 1, H // config.num_attention_heads),
            )
        yield p + "intermediate.dense.weight", (I, H)
        yield p + "intermediate.dense.bias", (I,)
        yield p + "output.dense.weight", (H, I)
        yield p + "output.dense.bias", (H,)
        for ln in ("attention.output.LayerNorm", "output.LayerNorm"):
            yield p + ln + ".weight", (H,)
            yield p + ln + ".bias", (H,)
