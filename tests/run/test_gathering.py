"""What the run's processes gather for the end-of-run tables (`bertcheck.run.gathering`): each worker's
worst errors and input classes, added up in the controller, and FAIL where a failed item said so."""

import json

import pytest

from bertcheck.inputs import coverage
from bertcheck.properties import worst
from bertcheck.run import gathering


@pytest.fixture
def clean(monkeypatch):
    monkeypatch.setattr(worst, "WORST", {})
    for name in ("COUNTS", "APPLICABLE", "NOT_APPLICABLE"):
        monkeypatch.setattr(coverage, name, {})


def test_two_workers_hand_over_their_worst_and_the_controller_keeps_the_larger(clean):
    total_worst, total_drawn = {}, {}
    for share in (0.25, 0.5):
        worst.WORST.clear()
        worst.WORST[("layernorm", "minilm")] = share
        handed = json.loads(json.dumps(gathering.handed()))  # what xdist carries is JSON
        gathering.take(total_worst, total_drawn, handed)
    assert total_worst == {("layernorm", "minilm"): 0.5}
    gathering.take(total_worst, total_drawn, {})  # a worker that died hands over nothing
    assert total_worst == {("layernorm", "minilm"): 0.5}


def test_a_row_a_failed_item_reported_is_fail_whatever_the_workers_handed(clean):
    total = {("padding", "minilm"): 0.1}
    gathering.add_own(total, {}, {("padding", "minilm"), ("pooler", "minilm")})
    assert total == {("padding", "minilm"): worst.FAILED, ("pooler", "minilm"): worst.FAILED}
