"""Dtypes and devices against the float64 CPU reference; a fully padded row; gradients."""

import torch
from hypothesis import example, given, target

from bertcheck.inputs.cases import Case
from bertcheck.properties.registry import run_model_property
from bertcheck.inputs.strategies import cases, dtypes

# Every dtype with a row in the tolerance table; float16 has none yet (it needs CUDA to measure).
ALL_DTYPES = dtypes(allowed=(torch.float32, torch.float64, torch.bfloat16))


@given(case=cases(dtypes=ALL_DTYPES, max_batch=4, long=False))
@example(case=Case(("this is a test sentence", "short"), dtype=torch.bfloat16))
def test_every_dtype_and_device_agrees_with_the_float64_reference_and_stays_finite(bert, case):
    target(run_model_property(bert, case, "precision"), label="precision")


@given(case=cases(max_batch=3, long=False))
def test_a_fully_padded_row_stays_finite_and_leaves_the_other_rows_alone(bert, case):
    target(run_model_property(bert, case, "padded-row"), label="padded-row")


@given(case=cases(max_batch=2, long=False))
def test_the_reference_backward_matches_hf_for_inputs_and_every_parameter(bert, case):
    target(run_model_property(bert, case, "gradients"), label="gradients")
