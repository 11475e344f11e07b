"""Every layer property can fail: each broken layer is caught by the right property and activation."""

import pytest
import torch

import mutants
from bertcheck.properties.failures import PropertyFailure
from bertcheck.inputs.cases import LayerCase
from bertcheck.properties.registry import LAYER, run_layer_property


def _case(scale="unit", dtype=torch.float32, layer=1):
    return LayerCase(layer=layer, batch=3, tokens=9, pad=3, scale=scale, seed=7, dtype=dtype)


BROKEN = {
    # The point: at variance ~1e-6 a wrong eps shows even in float32.
    "eps 1e-5 for 1e-12, float32": (
        lambda m: mutants.layernorm_eps(m, "ln1", 1),
        _case("low"),
        "layer-equivalence",
        "blocks.1.resid_mid",
        "resid_mid == reference",
    ),
    "positions leak into attention": (
        lambda m: mutants.position_leak(m, 1),
        _case(),
        "permutation",
        "blocks.1.resid_post",
        "layer(x[:, perm]) == layer(x)[:, perm]",
    ),
    "feed-forward mixes tokens": (
        lambda m: mutants.ffn_mixes_tokens(m, 1),
        _case(),
        "ffn-locality",
        "blocks.1.mlp_out",
        "mlp_out of every token but",
    ),
    "RMSNorm is not shift invariant": (
        lambda m: mutants.layernorm_uncentered(m, "ln1", 1),
        _case("large"),
        "layernorm-invariance",
        "blocks.1.resid_mid",
        "LN(3 * x + 75) == LN(x)",
    ),
    "second residual from the layer input": (
        lambda m: mutants.ffn_residual_from_layer_input(m, 1),
        _case(),
        "residual-probes",
        "blocks.1.resid_post",
        "with output.dense zeroed, resid_post == LN(resid_mid)",
    ),
}


@pytest.mark.parametrize("broken", BROKEN, ids=list(BROKEN))
def test_each_broken_layer_fails_the_property_that_guards_it(fresh, broken):
    breaks, case, key, activation, words = BROKEN[broken]
    bert = fresh("random:tiny", case.dtype)
    breaks(bert.model(case.dtype))
    with pytest.raises(PropertyFailure) as caught:
        run_layer_property(bert, case, key)
    failure = caught.value
    assert (failure.key, failure.where, failure.activation) == (key, "layer 1", activation), str(failure)
    assert words in str(failure)
    assert f"python -m bertcheck check-layer {key} --model random:tiny --layer 1 " in str(failure)


@pytest.mark.parametrize("key", LAYER)
@pytest.mark.parametrize("scale", ["unit", "low"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=["float32", "float64"])
def test_every_layer_property_holds_on_the_unbroken_layer(fresh, key, scale, dtype):
    bert = fresh("random:tiny", dtype)
    assert run_layer_property(bert, _case(scale, dtype), key) <= 1.0
