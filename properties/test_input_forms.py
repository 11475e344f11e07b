"""Every way users call BertModel gives the plain call's hidden states, or the reference's where the form
changes the meaning, on every attention implementation the release has (`bertcheck.properties.input_forms`)."""

import pytest
from hypothesis import given, target

from bertcheck.properties.failures import PropertyFailure
from bertcheck.properties.input_forms import FORMS, key_of, lacked, member_lacks
from bertcheck.properties.known_bugs import known_bug
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
    why = member_lacks(FORMS[form], bert.config)  # the member's API takes no such form: a visible skip
    if why:
        pytest.skip(why)
    bug = known_bug(key_of(FORMS[form]), bert.config)
    if bug is None:
        target(run_model_property(bert, case, key_of(FORMS[form])), label=form)
        return
    # A bug of this transformers that the property finds: expected to fail, and red the day it holds.
    try:
        run_model_property(bert, case, key_of(FORMS[form]))
    except PropertyFailure as failure:
        pytest.xfail(f"known transformers bug, seen at {failure.where}, {failure.activation}: {bug}")
    raise AssertionError(f"the known transformers bug no longer shows on this input: {bug}")
