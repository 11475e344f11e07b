"""Attention implementations agree, eval mode repeats itself, and dropout sits where BERT puts it."""

import pytest
from hypothesis import given, target

from bertcheck.subjects._compat import attention_implementations
from bertcheck.properties.registry import run_model_property
from bertcheck.inputs.strategies import cases


@given(case=cases(max_batch=4, long=False))
def test_every_attention_implementation_gives_the_same_hidden_states(bert, case):
    if len(attention_implementations(bert.config)) < 2:
        pytest.skip(f"this transformers has only eager attention for {bert.member.model_class}: nothing to compare")
    target(run_model_property(bert, case, "eager-sdpa"), label="eager-sdpa")


@given(case=cases(max_batch=4, long=False))
def test_eval_mode_forwards_are_bit_for_bit_repeatable(bert, case):
    target(run_model_property(bert, case, "determinism"), label="determinism")


@given(case=cases(max_batch=4, long=False))
def test_train_mode_dropout_hits_sublayer_outputs_never_the_residual_stream(bert, case):
    target(run_model_property(bert, case, "dropout"), label="dropout")
