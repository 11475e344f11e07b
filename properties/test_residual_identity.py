"""Residual identity at both add & norms, on the values the HF model itself computed."""

import pytest
from hypothesis import example, given, target

from bertcheck.inputs.cases import Case
from bertcheck.properties.registry import run_model_property
from bertcheck.inputs.strategies import cases


@pytest.mark.shares_forward
@given(case=cases())
@example(case=Case(("this is a test sentence",)))
def test_both_layernorms_take_the_sublayer_output_plus_the_right_residual(bert, case):
    target(run_model_property(bert, case, "residual-identity"), label="residual-identity")
