"""Intermediate width and activation: hidden_size -> config.intermediate_size -> hidden_size, exact GELU."""

import pytest
from hypothesis import example, given, target

from bertcheck.inputs.cases import Case
from bertcheck.properties.registry import run_model_property
from bertcheck.inputs.strategies import cases


@pytest.mark.shares_forward
@given(case=cases())
@example(case=Case(("this is a test sentence",)))
def test_the_feed_forward_widens_to_intermediate_size_through_exact_gelu(bert, case):
    target(run_model_property(bert, case, "intermediate-width"), label="intermediate-width")
