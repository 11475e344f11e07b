"""The invariants of the BERT architecture, checked on one observation of the HF model.

Each check raises `PropertyFailure` naming the property, the layer and the activation, with the
greatest differences and the input; on success it returns the worst error as a fraction of the
tolerance (0 is exact, 1 is the limit), for `hypothesis.target` and the run summary.
"""

from __future__ import annotations

import torch
from hypothesis import reject
from hypothesis.control import currently_in_test_context

from bertcheck.failures import Check, Unavailable, full_name, where_of
from bertcheck.invariances import INVARIANCES
from bertcheck.names import (
    CAPTURED_LAYER_NAMES,
    EMBED_LN,
    EMBED_NAMES,
    LAYER_LNS,
    RESIDUAL_ADDS,
    layer_module,
    layer_name,
)
from bertcheck.reference import ACTIVATIONS
from bertcheck.subject import Bert, Observation
from bertcheck.tolerances import EXACT, Tolerance, tolerances_for
from bertcheck.worst import record


# ---- residual identity --------------------------------------------------------------------------


def residual_identity(bert: Bert, obs: Observation) -> float:
    """Both add & norms add the sublayer output to the right residual: `ln1_in == attn_out + resid_pre`
    and `ln2_in == mlp_out + resid_mid` (the *first LayerNorm's output*), bit for bit in eval mode."""
    __tracebackhide__ = True
    check = Check("residual-identity", "residual identity", obs)
    for i in range(bert.config.num_hidden_layers):
        for add in RESIDUAL_ADDS:
            where = where_of(i)
            total = check.get(where, layer_name(i, add.total))
            expected = check.get(where, layer_name(i, add.sublayer)) + check.get(where, layer_name(i, add.residual))
            check.close(where, layer_name(i, add.total), total, expected, EXACT,
                        f"{add.total} == {add.sublayer} + {add.residual}, bit for bit (eval mode)")  # fmt: skip
    return 0.0


# ---- LayerNorm statistics -----------------------------------------------------------------------


def _layernorm_sites(bert: Bert):
    """(layer or None, site, HF module path) for the embeddings LayerNorm and both LayerNorms of every layer."""
    yield None, EMBED_LN, EMBED_LN.module
    for i in range(bert.config.num_hidden_layers):
        for site in LAYER_LNS:
            yield i, site, layer_module(i, site.module)


def normalized(module, x: torch.Tensor) -> torch.Tensor:
    """HF's own normalized value z: its LayerNorm `module` run on `x` with gain 1 and bias 0."""
    identity = {"weight": torch.ones_like(module.weight), "bias": torch.zeros_like(module.bias)}
    with torch.no_grad():
        return torch.func.functional_call(module, identity, (x,))


def layernorm_statistics(bert: Bert, obs: Observation) -> float:
    """Before its affine, each LayerNorm's normalized value z has per-token mean 0 and variance
    v / (v + eps) (eps from the config), and the output is `gamma * z + beta`.

    z is HF's own: its LayerNorm module run on the captured input with gain 1 and bias 0. Nothing
    divides by gamma, which is ~1e-33 on some channels of the trained MiniLM.
    """
    __tracebackhide__ = True
    check = Check("layernorm", "LayerNorm zero mean, unit variance", obs)
    dtype, device = obs.case.dtype, obs.case.device
    tol = tolerances_for(dtype)
    if tol.ln_mean is None or tol.ln_var is None:
        raise Unavailable(f"LayerNorm statistics are not measured for {dtype}: run this property in float32 or float64")
    modules = dict(bert.model(dtype, device).named_modules())
    eps = bert.config.layer_norm_eps
    worst = 0.0
    for layer, site, path in _layernorm_sites(bert):
        where = where_of(layer)
        name = full_name(layer, site.output)
        x, y = check.get(where, full_name(layer, site.input)), check.get(where, name)
        module = modules[path]
        gamma, beta = module.weight.detach(), module.bias.detach()
        z = normalized(module, x)
        z64, v = z.double(), x.double().var(dim=-1, unbiased=False)
        # Per-token statistics are (B, T) tensors: compared like activations, with an absolute limit.
        for value, target, limit, text in (
            (z64.mean(dim=-1), torch.zeros_like(v), tol.ln_mean, "per-token mean of z is 0"),
            (z64.var(dim=-1, unbiased=False), v / (v + eps), tol.ln_var, f"per-token variance of z is v/(v+eps), eps={eps:g}"),
        ):  # fmt: skip
            worst = max(worst, check.close(where, name, value, target, Tolerance(rtol=0.0, atol=limit), f"{site.name}: {text}"))
        affine = gamma * z + beta
        worst = max(worst, check.close(where, name, y, affine, tol.values, f"{site.name}: output == gamma * z + beta"))
    return worst


# ---- intermediate width and activation ----------------------------------------------------------


def intermediate_width(bert: Bert, obs: Observation) -> float:
    """The feed-forward maps hidden_size -> config.intermediate_size -> hidden_size, through the
    configured activation (BERT's is `gelu`, the exact erf GELU), computed from its formula."""
    __tracebackhide__ = True
    check = Check("intermediate-width", "intermediate width", obs)
    config = bert.config
    tol = tolerances_for(obs.case.dtype)
    act = ACTIVATIONS[config.hidden_act]  # the audit refused every name the reference lacks before any test
    formula = "the exact erf GELU" if config.hidden_act == "gelu" else "config.hidden_act"
    worst = 0.0
    widths = {"mlp_pre": config.intermediate_size, "mlp_post": config.intermediate_size, "mlp_out": config.hidden_size}
    for i in range(config.num_hidden_layers):
        where = where_of(i)
        for short, width in widths.items():
            value = check.get(where, layer_name(i, short))
            if value.shape[-1] != width:
                setting = "intermediate_size" if width == config.intermediate_size else "hidden_size"
                raise check.fail(where, layer_name(i, short), f"last dimension == config.{setting} = {width}",
                                 [f"shape {tuple(value.shape)}: last dimension {value.shape[-1]}"])  # fmt: skip
        pre, post = check.get(where, layer_name(i, "mlp_pre")), check.get(where, layer_name(i, "mlp_post"))
        worst = max(worst, check.close(where, layer_name(i, "mlp_post"), post, act(pre), tol.values,
                                       f"mlp_post == {config.hidden_act}(mlp_pre), {formula}"))  # fmt: skip
    return worst


# ---- per-layer equivalence with hidden_states ---------------------------------------------------


def hidden_states(bert: Bert, obs: Observation) -> float:
    """`output_hidden_states` holds the embeddings then each layer's output, and the reference reproduces
    each: from the ids (embeddings) and from `hidden_states[i]` (layer i); `last_hidden_state` is the last."""
    __tracebackhide__ = True
    check = Check("hidden-states", "per-layer equivalence with hidden_states", obs)
    dtype, device = obs.case.dtype, obs.case.device
    tol = tolerances_for(dtype).values
    n_layers = bert.config.num_hidden_layers
    acts, inputs = obs.acts, obs.inputs
    states = acts.hidden_states
    if len(states) != n_layers + 1:
        raise check.fail("the model output", "hidden_states", f"len(hidden_states) == num_hidden_layers + 1 = {n_layers + 1}",
                         [f"got {len(states)}"])  # fmt: skip
    ref = bert.reference(dtype, device)
    worst = 0.0
    with torch.no_grad():
        embedded = ref.embed(inputs["input_ids"], inputs["token_type_ids"])
        for name in EMBED_NAMES:  # localize: the first embedding step that differs
            if name in acts:  # HF keeps position embeddings as (1, T, H), broadcast over the batch
                actual = acts[name].expand_as(embedded[name]) if acts[name].dim() == embedded[name].dim() else acts[name]
                worst = max(worst, check.close("embeddings", name, actual, embedded[name], tol, f"{name} == reference {name}"))
        worst = max(worst, check.close("embeddings", "hidden_states[0]", states[0], embedded["embed.out"], tol,
                                       "hidden_states[0] == reference embeddings"))  # fmt: skip
        for i in range(n_layers):
            where = where_of(i)
            out = ref.layer(i, states[i], inputs["attention_mask"])
            for short in CAPTURED_LAYER_NAMES:  # localize: the first activation that differs
                name = layer_name(i, short)
                if name in acts and name not in acts.repeated:
                    worst = max(worst, check.close(where, name, acts[name], out[name], tol,
                                                   f"{short} == reference layer {i} {short}, fed hidden_states[{i}]"))  # fmt: skip
            worst = max(worst, check.close(where, f"hidden_states[{i + 1}]", states[i + 1], out[layer_name(i, "resid_post")],
                                           tol, f"hidden_states[{i + 1}] == reference layer {i} fed hidden_states[{i}]"))  # fmt: skip
    # The chain is closed link by link: hidden_states[0] is the reference embedding, each layer's input
    # (resid_pre, as captured) is hidden_states[i] and its output hidden_states[i + 1]; what is left is
    # that the model returns the last link. (A chained reference forward would add a whole forward per
    # example and test only how float32 error accumulates, which is arithmetic, not the model.)
    worst = max(worst, check.close("the model output", "last_hidden_state", acts.last_hidden_state, states[-1], EXACT,
                                   f"last_hidden_state is hidden_states[{n_layers}], bit for bit"))  # fmt: skip
    return worst


CHECKS = {
    "residual-identity": residual_identity,
    "layernorm": layernorm_statistics,
    "intermediate-width": intermediate_width,
    "hidden-states": hidden_states,
}


def verify(bert: Bert, case, check: str) -> float:
    """Run property `check` on one example. Returns its worst error as a fraction of the tolerance;
    raises PropertyFailure."""
    __tracebackhide__ = True
    why = bert.unsupported(case)
    if why:
        if currently_in_test_context():
            # The strategies are built before the model is known: an input this model does not take
            # (a sentence pair for a single token type) is rejected, and Hypothesis draws another.
            reject()
        raise Unavailable(why)
    if check in CHECKS:  # one hooked forward, shared by every layer's check
        return record(check, bert.name, CHECKS[check](bert, bert.observe(case)))
    if check in INVARIANCES:  # the forwards each needs
        return record(check, bert.name, INVARIANCES[check](bert, case))
    raise ValueError(f"unknown property {check!r}; known: {', '.join([*CHECKS, *INVARIANCES])}")
