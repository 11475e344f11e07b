"""Padding and batching are invisible to real tokens. Each example runs 2-5 extra forwards: batches of at most 4."""

from hypothesis import example, given, target

from bertcheck.inputs.cases import Case
from bertcheck.properties.registry import run_model_property
from bertcheck.inputs.strategies import cases


@given(case=cases(max_batch=4, long=False))
@example(case=Case(("this is a test sentence", "short")))
def test_padded_positions_change_no_real_token_output(bert, case):
    target(run_model_property(bert, case, "padding"), label="padding")


# At least two texts: a batch of one is the text alone, and the property would compare a forward with itself.
@given(case=cases(min_batch=2, max_batch=4, long=False))
@example(case=Case(("this is a test sentence", "short", "a third one")))
def test_a_text_gives_the_same_outputs_alone_and_in_any_batch_order(bert, case):
    target(run_model_property(bert, case, "batching"), label="batching")
