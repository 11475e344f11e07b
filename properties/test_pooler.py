"""The pooler: BertPooler is a dense layer and tanh on the first token's last hidden state."""

import pytest
from hypothesis import given, target

from bertcheck.properties.registry import run_model_property
from bertcheck.inputs.strategies import cases


@given(case=cases(max_batch=4, long=False))
def test_the_pooler_is_tanh_of_a_dense_layer_on_the_first_tokens_last_state(bert, case):
    if bert.lacks_pooler:  # ELECTRA, or a BertModel saved without one: a visible skip, never a pass
        pytest.skip(bert.lacks_pooler)
    target(run_model_property(bert, case, "pooler"), label="pooler")
