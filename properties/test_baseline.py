"""The live model against a recorded baseline (`--bert-baseline FILE`, from `bertcheck baseline record`):
structure first, then every activation of every layer on the fixed probe set. Deselected without the option."""

import pytest

from bertcheck.tools.baseline import BaselineError, compare, load
from bertcheck.plugin import loaded


def test_the_live_model_matches_its_recorded_baseline_layer_by_layer(bert_baseline, request):
    try:
        baseline = load(bert_baseline)
        result = compare(baseline, loaded(baseline.meta["model"], request.config))
    except BaselineError as err:
        pytest.fail(f"--bert-baseline {bert_baseline}: {err}", pytrace=False)
    if result.drifted:
        pytest.fail(result.report(), pytrace=False)
