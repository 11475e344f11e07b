"""The invariants of the BERT architecture read from one hooked forward of the HF model.

Every property here only *reads* that forward (residual identity, LayerNorm statistics, intermediate
width, per-layer equivalence with hidden_states), so one forward per example serves them all: the
forward streams, and as each layer finishes every property checks that layer and its activations
are dropped, so a worker holds one layer's activations, not all of them (a 512-token float64
example of bert-base held ~0.7 GB). Each property keeps its own result: a failure names its
property, layer and activation, and the others still run.

On success a property's result is its worst error as a fraction of the tolerance (0 exact, 1 the
limit), for `hypothesis.target` and the run summary; on failure a `PropertyFailure`.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from bertcheck.subjects.capture import Activations, capture
from bertcheck.properties.failures import Judge, PropertyFailure, Unavailable, full_name, where_of
from bertcheck.spec.family import embed_names, layer_path, module_path, of_config, projects
from bertcheck.spec.names import (
    CAPTURED_LAYER_NAMES,
    LAYER_LNS,
    RESIDUAL_ADDS,
    embed_ln,
    layer_name,
)
from bertcheck.spec.reference import ACTIVATIONS, normalized_moments
from bertcheck.subjects.subject import Bert, ForwardError, Observation
from bertcheck.spec.tolerances import EXACT, Tolerance, tolerances_for


class Reading(Judge):
    """A property's `Judge` on the streaming observation: it remembers which activations it read, so a
    module that runs again after its layer was checked still fails the properties that read it."""

    def __init__(self, key: str, title: str, obs: Observation):
        super().__init__(key, title, obs.case, obs.model_name, obs.real, obs.acts, ids=obs.inputs["input_ids"])
        self.read: dict[str, str] = {}  # name -> where

    def get(self, where: str, name: str) -> torch.Tensor:
        __tracebackhide__ = True
        self.read[name] = where
        return super().get(where, name)


class Context:
    """What every property may need on one observation, made once: tolerances, modules, the reference."""

    def __init__(self, bert: Bert, obs: Observation):
        self.bert, self.obs = bert, obs
        self.dtype, self.device = obs.case.dtype, obs.case.device
        self.tol = tolerances_for(self.dtype)
        self._modules = self._ref = None

    @property
    def modules(self) -> dict:
        if self._modules is None:
            self._modules = dict(self.bert.model(self.dtype, self.device).named_modules())
        return self._modules

    @property
    def ref(self):
        if self._ref is None:
            self._ref = self.bert.reference(self.dtype, self.device)
        return self._ref


# ---- residual identity --------------------------------------------------------------------------


def residual_identity_layer(ctx: Context, judge: Judge, i: int) -> float:
    """Both add & norms add the sublayer output to the right residual: `ln1_in == attn_out + resid_pre`
    and `ln2_in == mlp_out + resid_mid` (the *first LayerNorm's output*), bit for bit in eval mode."""
    __tracebackhide__ = True
    where = where_of(i)
    for add in RESIDUAL_ADDS:
        total = judge.get(where, layer_name(i, add.total))
        expected = judge.get(where, layer_name(i, add.sublayer)) + judge.get(where, layer_name(i, add.residual))
        judge.close(
            where,
            layer_name(i, add.total),
            total,
            expected,
            EXACT,
            f"{add.total} == {add.sublayer} + {add.residual}, bit for bit (eval mode)",
        )
    return 0.0


# ---- LayerNorm statistics -----------------------------------------------------------------------


def normalized(module, x: torch.Tensor) -> torch.Tensor:
    """HF's own normalized value z: its LayerNorm `module` run on `x` with gain 1 and bias 0."""
    identity = {"weight": torch.ones_like(module.weight), "bias": torch.zeros_like(module.bias)}
    with torch.no_grad():
        return torch.func.functional_call(module, identity, (x,))


def _layernorm_site(ctx: Context, judge: Judge, layer: int | None, site, path: str) -> float:
    """Before its affine, the LayerNorm's normalized value z has per-token mean 0 and variance
    v / (v + eps) (eps from the config), and the output is `gamma * z + beta`.

    z is HF's own: its LayerNorm module run on the captured input with gain 1 and bias 0. Nothing
    divides by gamma, which is ~1e-33 on some channels of the trained MiniLM.
    """
    __tracebackhide__ = True
    tol = ctx.tol
    if tol.ln_mean is None or tol.ln_var is None:
        raise Unavailable(
            f"LayerNorm statistics are not measured for {ctx.dtype}: run this property in float32 or float64"
        )
    eps = ctx.bert.config.layer_norm_eps
    where = where_of(layer)
    name = full_name(layer, site.output)
    x, y = judge.get(where, full_name(layer, site.input)), judge.get(where, name)
    module = ctx.modules[path]
    gamma, beta = module.weight.detach(), module.bias.detach()
    z = normalized(module, x)
    mean, var, wanted = normalized_moments(z, x, eps)
    worst = 0.0
    # Per-token statistics are (B, T) tensors: compared like activations, with an absolute limit.
    for value, target, limit, text in (
        (mean, torch.zeros_like(mean), tol.ln_mean, "per-token mean of z is 0"),
        (var, wanted, tol.ln_var, f"per-token variance of z is v/(v+eps), eps={eps:g}"),
    ):
        worst = max(
            worst, judge.close(where, name, value, target, Tolerance(rtol=0.0, atol=limit), f"{site.name}: {text}")
        )
    affine = gamma * z + beta
    return max(worst, judge.close(where, name, y, affine, tol.values, f"{site.name}: output == gamma * z + beta"))


def layernorm_embeddings(ctx: Context, judge: Judge) -> float:
    __tracebackhide__ = True
    site = embed_ln(projects(ctx.bert.config))
    return _layernorm_site(ctx, judge, None, site, site.module)


def layernorm_layer(ctx: Context, judge: Judge, i: int) -> float:
    __tracebackhide__ = True
    config = ctx.bert.config
    return max(_layernorm_site(ctx, judge, i, site, module_path(config, i, site.module)) for site in LAYER_LNS)


# ---- intermediate width and activation ----------------------------------------------------------


def intermediate_width_layer(ctx: Context, judge: Judge, i: int) -> float:
    """The feed-forward maps hidden_size -> config.intermediate_size -> hidden_size, through the
    configured activation (BERT's is `gelu`, the exact erf GELU), computed from its formula."""
    __tracebackhide__ = True
    config = ctx.bert.config
    act = ACTIVATIONS[config.hidden_act]  # the audit refused every name the reference lacks before any test
    formula = "the exact erf GELU" if config.hidden_act == "gelu" else "config.hidden_act"
    widths = {"mlp_pre": config.intermediate_size, "mlp_post": config.intermediate_size, "mlp_out": config.hidden_size}
    where = where_of(i)
    for short, width in widths.items():
        value = judge.get(where, layer_name(i, short))
        if value.shape[-1] != width:
            setting = "intermediate_size" if width == config.intermediate_size else "hidden_size"
            raise judge.fail(
                where,
                layer_name(i, short),
                f"last dimension == config.{setting} = {width}",
                [f"shape {tuple(value.shape)}: last dimension {value.shape[-1]}"],
            )
    pre, post = judge.get(where, layer_name(i, "mlp_pre")), judge.get(where, layer_name(i, "mlp_post"))
    return judge.close(
        where,
        layer_name(i, "mlp_post"),
        post,
        act(pre),
        ctx.tol.values,
        f"mlp_post == {config.hidden_act}(mlp_pre), {formula}",
    )


# ---- per-layer equivalence with hidden_states ---------------------------------------------------


def hidden_states_embeddings(ctx: Context, judge: Judge) -> float:
    """The reference embeds the ids as HF did, step by step (localized at the first step that differs)."""
    __tracebackhide__ = True
    acts, inputs, tol = ctx.obs.acts, ctx.obs.inputs, ctx.tol.values
    worst = 0.0
    with torch.no_grad():
        embedded = ctx.ref.embed(inputs["input_ids"], inputs.get("token_type_ids"))
    for name in embed_names(ctx.bert.config)[:-1]:
        if name in embedded and name in acts.missing:  # a summand the spec adds that HF never computed
            judge.get("embeddings", name)
        if (
            name in acts and name not in acts.repeated
        ):  # HF keeps position embeddings as (1, T, H), broadcast over the batch
            actual = acts[name].expand_as(embedded[name]) if acts[name].dim() == embedded[name].dim() else acts[name]
            worst = max(
                worst, judge.close("embeddings", name, actual, embedded[name], tol, f"{name} == reference {name}")
            )
    out = judge.get("embeddings", "embed.out")
    return max(
        worst,
        judge.close(
            "embeddings",
            "embed.out",
            out,
            embedded["embed.out"],
            tol,
            "hidden_states[0] (the embeddings' output) == reference embeddings",
        ),
    )


def hidden_states_layer(ctx: Context, judge: Judge, i: int) -> float:
    """The reference layer i, fed the input HF's layer i was given, reproduces each of its activations
    (localized at the first that differs) and its output."""
    __tracebackhide__ = True
    acts, tol, where = ctx.obs.acts, ctx.tol.values, where_of(i)
    with torch.no_grad():
        out = ctx.ref.layer(i, judge.get(where, layer_name(i, "resid_pre")), ctx.obs.inputs["attention_mask"])
    worst = 0.0
    for short in CAPTURED_LAYER_NAMES[1:]:
        name = layer_name(i, short)
        if short == "resid_post":
            acts_value = judge.get(where, name)
        elif name in acts and name not in acts.repeated:
            acts_value = acts[name]
        else:
            continue
        text = (
            f"hidden_states[{i + 1}] == reference layer {i} fed hidden_states[{i}]"
            if short == "resid_post"
            else f"{short} == reference layer {i} {short}, fed hidden_states[{i}]"
        )
        worst = max(worst, judge.close(where, name, acts_value, out[name], tol, text))
    return worst


def hidden_states_end(ctx: Context, judge: Judge) -> float:
    """`output_hidden_states` holds the embeddings then each layer's output, the very tensors each layer
    was given and returned (so the layer-by-layer checks above cover them), and `last_hidden_state` is
    the last. (A chained reference forward would add a whole forward per example and test only how
    float32 error accumulates, which is arithmetic, not the model.)"""
    __tracebackhide__ = True
    acts, n_layers = ctx.obs.acts, ctx.bert.config.num_hidden_layers
    states = acts.hidden_states
    if len(states) != n_layers + 1:
        raise judge.fail(
            "the model output",
            "hidden_states",
            f"len(hidden_states) == num_hidden_layers + 1 = {n_layers + 1}",
            [f"got {len(states)}"],
        )
    links = [("embeddings", "embed.out", 0, "the embeddings' output")]
    for i in range(n_layers):
        links += [
            (where_of(i), layer_name(i, "resid_pre"), i, f"layer {i}'s input"),
            (where_of(i), layer_name(i, "resid_post"), i + 1, f"layer {i}'s output"),
        ]
    for where, name, index, what in links:
        judge.close(
            where,
            f"hidden_states[{index}]",
            states[index],
            judge.get(where, name),
            EXACT,
            f"hidden_states[{index}] is {what} ({name}), bit for bit",
        )
    judge.close(
        "the model output",
        "last_hidden_state",
        acts.last_hidden_state,
        states[-1],
        EXACT,
        f"last_hidden_state is hidden_states[{n_layers}], bit for bit",
    )
    return 0.0


class ReadOnly:
    """A property read from the one forward: what it checks of the embeddings, of each layer as it
    finishes, and of the whole output at the end (each optional)."""

    def __init__(
        self,
        title: str,
        *,
        embeddings: Callable | None = None,
        layer: Callable | None = None,
        end: Callable | None = None,
    ):
        self.title, self.embeddings, self.layer, self.end = title, embeddings, layer, end


READ_ONLY = {
    "residual-identity": ReadOnly("residual identity", layer=residual_identity_layer),
    "layernorm": ReadOnly("LayerNorm zero mean, unit variance", embeddings=layernorm_embeddings, layer=layernorm_layer),
    "intermediate-width": ReadOnly("intermediate width", layer=intermediate_width_layer),
    "hidden-states": ReadOnly(
        "per-layer equivalence with hidden_states",
        embeddings=hidden_states_embeddings,
        layer=hidden_states_layer,
        end=hidden_states_end,
    ),
}


class _Result:
    """One property's result on one observation, built step by step: the worst ratio so far, or the
    first failure (after which its later steps are skipped)."""

    def __init__(self, key: str, obs: Observation):
        self.key, self.judge = key, Reading(key, READ_ONLY[key].title, obs)
        self.worst, self.outcome = 0.0, None  # outcome: a PropertyFailure, Unavailable or another exception

    def step(self, fn: Callable | None, *args) -> None:
        if fn is None or self.outcome is not None:
            return
        try:
            self.worst = max(self.worst, fn(*args))
        except PropertyFailure as err:
            # Kept (and memoized by `observed`) without the frames that made it: they hold the forward's
            # activations (`PropertyFailure.again`). `result_of` raises a fresh copy in any case.
            self.outcome = err.again()
        except Unavailable as err:
            self.outcome = Unavailable(str(err))
        except Exception as err:  # noqa: BLE001 - a bug of ours inside the model's forward: raised after it, as is
            self.outcome = err

    def reread(self) -> None:
        """A module that ran again after its layer was checked: its activations are not trustworthy."""
        if self.outcome is None:
            repeated = self.judge.acts.repeated
            for name, where in self.judge.read.items():
                if name in repeated:
                    try:
                        self.judge.get(where, name)  # raises: its module ran more than once
                    except PropertyFailure as err:
                        self.outcome = err.again()
                    return

    @property
    def value(self):
        return self.outcome if self.outcome is not None else self.worst


def observe_all(bert: Bert, case) -> dict[str, float | Exception]:
    """Every read-only property on `case`, from one streaming hooked forward: key -> worst ratio or
    the exception it ended with."""
    n_layers = bert.config.num_hidden_layers
    inputs = bert.encode(case)
    store = Activations()
    obs = Observation(case=case, model_name=bert.model_name, inputs=inputs, acts=store)
    ctx = Context(bert, obs)
    results = {key: _Result(key, obs) for key in READ_ONLY}
    done: set = set()

    def embeddings_done():
        done.add("embeddings")
        for key, result in results.items():
            result.step(READ_ONLY[key].embeddings, ctx, result.judge)

    def layer_done(i: int):
        done.add(i)
        for key, result in results.items():
            result.step(READ_ONLY[key].layer, ctx, result.judge, i)
        for short in CAPTURED_LAYER_NAMES:  # read: dropped, but for HF's own hidden states (kept by HF anyway)
            if short not in ("resid_pre", "resid_post"):
                store.pop(layer_name(i, short), None)

    # The embeddings are done when their output is: past the member's projection where it projects them.
    # A layer is done when its module returns (ALBERT's shared layer: at each of its uses, in order).
    finished = [
        (of_config(bert.config).projection if projects(bert.config) else "embeddings", embeddings_done),
        *((layer_path(bert.config, i), (lambda i=i: layer_done(i))) for i in range(n_layers)),
    ]
    try:
        capture(bert.model(case.dtype, case.device), **inputs, store=store, finished=finished)
    except Exception as err:  # noqa: BLE001 - any crash of the model under test is reported the same way
        lines = [
            f"the forward of {bert.model_name} raised {type(err).__name__}: {err}",
            *case.describe(bert.model_name),
        ]
        raise ForwardError("\n  ".join(lines)) from err
    # Whatever never finished (a layer replaced or skipped) is checked now: its missing names fail.
    if "embeddings" not in done:
        embeddings_done()
    for i in range(n_layers):
        if i not in done:
            layer_done(i)
    for key, result in results.items():
        result.step(READ_ONLY[key].end, ctx, result.judge)
        result.reread()
    return {key: result.value for key, result in results.items()}


_SHARED_LIMIT = 512  # observations remembered per model: results only (floats and failures), never tensors


def observed(bert: Bert, case) -> dict[str, float | Exception]:
    """`observe_all`, remembered per (model, case) where the model shares observations (the pytest
    plugin's models, which no property changes): the four read-only properties of one shard draw the
    same inputs, so the first runs the forward and the other three read its results."""
    if not bert.shares_observations:
        return observe_all(bert, case)
    memo = bert.observations
    if case not in memo:
        memo[case] = observe_all(bert, case)
        while len(memo) > _SHARED_LIMIT:
            memo.popitem(last=False)
    return memo[case]


def result_of(bert: Bert, case, key: str) -> float:
    """One read-only property's result on `case` (raises its failure)."""
    __tracebackhide__ = True
    outcome = observed(bert, case)[key]
    if isinstance(outcome, PropertyFailure):
        raise outcome.again()
    if isinstance(outcome, Unavailable):
        raise Unavailable(str(outcome))
    if isinstance(outcome, Exception):
        raise outcome
    return outcome
