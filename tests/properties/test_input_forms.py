"""Each input form's property catches a mutant that breaks that form alone (tests/mutants.py,
FORM_BREAKS), while the plain call stays bit for bit what it was; the failure names the form."""

import pytest
import torch

import mutants
from bertcheck.subjects._compat import attention_implementations
from bertcheck.inputs.cases import Case
from bertcheck.properties.failures import PropertyFailure
from bertcheck.properties.input_forms import FORMS, key_of, lacked
from bertcheck.properties.registry import run_model_property

# Pairs (token types 0 and 1) and a padded row: what every form's mutant needs to show.
CASE = Case((("this is a test", "sentence pair"), ("a", "b c")))


def _plain_states(bert, inputs) -> dict[str, tuple]:
    out = {}
    for implementation in attention_implementations():
        with torch.no_grad(), bert.attention(implementation) as model:
            out[implementation] = model(**inputs, output_hidden_states=True, return_dict=True).hidden_states
    return out


def test_every_form_has_a_mutant():
    assert set(mutants.FORM_BREAKS) == set(FORMS)


@pytest.mark.parametrize("key", list(FORMS))
def test_a_mutant_that_breaks_one_input_form_is_caught_by_that_forms_property_alone(fresh, key):
    form = FORMS[key]
    if lacked(form):
        pytest.skip(lacked(form))
    bert = fresh("random:tiny")
    inputs = bert.encode(CASE)
    before = _plain_states(bert, inputs)
    assert run_model_property(bert, CASE, key_of(form)) <= 1.0
    what, plant = mutants.FORM_BREAKS[key]
    plant(bert.model())
    after = _plain_states(bert, inputs)
    for implementation, states in before.items():  # the plain call is untouched: the break is the form's alone
        assert all(torch.equal(a, b) for a, b in zip(after[implementation], states)), (what, implementation)
    with pytest.raises(PropertyFailure) as caught:
        run_model_property(bert, CASE, key_of(form))
    report = str(caught.value)
    assert caught.value.key == key_of(form), report
    assert f"Property 'input form: {form.title}' failed at " in report, report
    assert f"python -m bertcheck check {key_of(form)}" in report


def test_the_plain_call_keeps_the_first_inputs_that_fit_its_budget_and_computes_the_rest_each_time(fresh, monkeypatch):
    from bertcheck.properties import input_forms

    bert = fresh("random:tiny")
    model, forwards = bert.model(), []
    model.register_forward_pre_hook(lambda module, args: forwards.append(1))
    inputs = [bert.encode(Case((text,))) for text in ("one", "two", "three")]
    input_forms.forget_plain()
    size = input_forms._nbytes(input_forms._plain(model, inputs[0], keep=False))
    monkeypatch.setattr(input_forms, "_KEEP_BYTES", 2 * size)  # room for two of the three
    forwards.clear()
    for _ in range(3):  # as the forms of a unit do: the same inputs, in the same order
        for kwargs in inputs:
            input_forms._plain(model, kwargs)
    assert len(forwards) == 3 + 1 + 1  # the first two kept from the first pass on, the third run each time
    with torch.no_grad():  # the model changed in place: nothing kept applies
        model.encoder.layer[0].output.dense.weight.add_(1.0)
    forwards.clear()
    input_forms._plain(model, inputs[0])
    assert len(forwards) == 1
    input_forms.forget_plain()


def _refuses_bool_masks(kwargs):
    """A release whose model raises on a boolean mask (the message two lines long)."""
    if kwargs["attention_mask"] is not None and kwargs["attention_mask"].dtype == torch.bool:
        raise TypeError("expected a long mask,\ngot bool")
    return kwargs


def test_a_form_that_makes_hf_raise_is_a_failure_naming_the_form_and_the_exception(fresh):
    bert = fresh("random:tiny")
    mutants._altered_call(bert.model(), "RefusesBool", _refuses_bool_masks)
    with pytest.raises(PropertyFailure) as caught:
        run_model_property(bert, CASE, "form-mask-bool")
    report = str(caught.value)
    assert "failed at the model call, activation 'hidden_states'" in report, report
    assert "attention_mask as bool (B, T), eager attention is accepted" in report
    assert "raised TypeError: expected a long mask," in report  # the exception's first line


@pytest.fixture(scope="module")
def tiny_baselines(tmp_path_factory):
    """Baselines of the unbroken random:tiny on each attention implementation, recorded once."""
    from bertcheck.tools import baseline
    from bertcheck.subjects.subject import Bert

    bert, out = Bert.load("random:tiny"), {}
    for implementation in attention_implementations():
        path = tmp_path_factory.mktemp("forms") / f"tiny-{implementation}.safetensors"
        baseline.record(bert, path, attention=implementation)
        out[implementation] = baseline.load(path)
    return out


@pytest.mark.parametrize("key", list(FORMS))
def test_baseline_compare_reports_a_broken_input_form_as_drift_naming_it_while_every_activation_stays_exact(
    fresh, tiny_baselines, key
):
    from bertcheck.tools import baseline

    compared = []
    for implementation, recorded in tiny_baselines.items():
        if recorded.meta["forms"][key]["status"] != "recorded":
            continue
        if key == "output-attentions" and "pair/form:output-attentions.attentions" not in recorded.tensors:
            continue  # SDPA on 5.x returns no attentions: the mutant, which transposes them, changes nothing there
        bert = fresh("random:tiny")
        mutants.FORM_BREAKS[key][1](bert.model())
        result = baseline.compare(recorded, bert)
        report = result.report()
        assert result.drifted, report
        assert all(row.ratio == 0 for row in result.rows), report  # the plain call: every activation exact
        assert [row.name for row in result.form_rows if row.ratio > 1] == [key], report
        assert f"input forms that drifted or newly raise: form-{key}" in report, report
        assert f"DRIFT form-{key}: max abs " in report, report
        compared.append(implementation)
    if not compared:
        pytest.skip(f"no attention implementation here records form-{key}: {FORMS[key].lacks('eager')}")


def test_baseline_compare_calls_a_form_that_newly_raises_drift_and_one_the_release_lacks_removed(
    fresh, tiny_baselines, monkeypatch
):
    from bertcheck.tools import baseline
    from bertcheck.properties import input_forms

    bert = fresh("random:tiny")
    mutants._altered_call(bert.model(), "RefusesBool", _refuses_bool_masks)
    float_mask = input_forms.FORMS["mask-float"]
    lacking = input_forms.Form(float_mask.key, float_mask.title, float_mask.call, lambda i: "this release removed them")
    monkeypatch.setitem(input_forms.FORMS, "mask-float", lacking)
    result = baseline.compare(tiny_baselines["eager"], bert)
    report = result.report()
    assert result.drifted
    assert "DRIFT form-mask-bool newly raises TypeError: expected a long mask," in report, report
    assert "removed: form-mask-float: this release removed them" in report
    assert report.splitlines()[-1].endswith(
        "input forms that drifted or newly raise: form-mask-bool; input forms removed: form-mask-float"
    ), report
