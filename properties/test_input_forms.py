"""Every way users call BertModel gives the plain call's hidden states, or the reference's where the form
changes the meaning, on every attention implementation the release has (`bertcheck.properties.input_forms`)."""

import pytest
from hypothesis import given, target

from bertcheck.properties.input_forms import FORMS, key_of, lacked
from bertcheck.properties.registry import run_model_property
from bertcheck.inputs.shards import PLAIN_CALL
from bertcheck.inputs.strategies import cases


def _form(form):
    why = lacked(form)  # this release lacks the form: a visible skip with the reason, never a pass
    return pytest.param(form.key, id=form.key, marks=[pytest.mark.skip(reason=why)] if why else [])


# The forms of one model and shard draw the same inputs and run on one worker, which runs the plain call
# once per input and attention implementation for all of them (`bertcheck.properties.input_forms`).
@pytest.mark.shares_forward(PLAIN_CALL)
@pytest.mark.parametrize("form", [_form(form) for form in FORMS.values()])
@given(case=cases(max_batch=2, long=False))
def test_each_input_form_of_bertmodel_gives_what_the_plain_call_gives(bert, form, case):
    target(run_model_property(bert, case, key_of(FORMS[form])), label=form)
