"""Attention: probabilities over keys, padding masked out, and the pattern the reference computes."""

from hypothesis import example, given, target

from bertcheck.inputs.cases import Case
from bertcheck.properties.registry import run_model_property
from bertcheck.inputs.strategies import cases


@given(case=cases(max_batch=4, long=False))
@example(case=Case(("this is a test sentence", "short")))
def test_attention_sums_to_one_over_keys_ignores_padding_and_matches_the_reference(bert, case):
    target(run_model_property(bert, case, "attention-pattern"), label="attention-pattern")
