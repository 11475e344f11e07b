"""LayerNorm statistics: zero mean and unit variance before the affine, for every LayerNorm."""

import pytest
from hypothesis import example, given, target

from bertcheck.inputs.cases import Case
from bertcheck.properties.registry import run_model_property
from bertcheck.inputs.strategies import cases


@pytest.mark.shares_forward
@given(case=cases())
@example(case=Case(("this is a test sentence",)))
def test_every_layernorm_normalizes_each_token_to_zero_mean_and_unit_variance(bert, case):
    target(run_model_property(bert, case, "layernorm"), label="layernorm")
