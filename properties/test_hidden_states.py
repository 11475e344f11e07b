"""Per-layer equivalence: the reference reproduces every entry of output_hidden_states."""

import pytest
import torch
from hypothesis import example, given, target

from bertcheck.inputs.cases import Case
from bertcheck.properties.registry import run_model_property
from bertcheck.inputs.strategies import cases


@pytest.mark.shares_forward
@given(case=cases())
@example(case=Case(("this is a test sentence",)))
@example(case=Case(("this is a test sentence",), dtype=torch.float64))
def test_the_reference_reproduces_every_hidden_state(bert, case):
    target(run_model_property(bert, case, "hidden-states"), label="hidden-states")
