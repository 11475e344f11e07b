"""Baselines and `walk` on the family members: each member's own intermediate class is where a regression
lands (in 4.x each is its own copy of BertIntermediate), and both tools must see it there."""

import pytest
import torch

from bertcheck.subjects.subject import Bert
from bertcheck.tools import cli

MEMBERS = ("random:roberta-tiny", "random:electra-tiny", "random:ernie-tiny")


def _cli(capsys, *args):
    code = cli.main(list(args))
    out, err = capsys.readouterr()
    return code, out + err


@pytest.fixture
def tanh_gelu_in(monkeypatch):
    """Plant a tanh GELU into `model_name`'s own intermediate class (RobertaIntermediate, ...)."""

    def plant(model_name: str):
        own = type(Bert.once(model_name).model().encoder.layer[0].intermediate)
        assert own.__name__ != "BertIntermediate" or model_name.startswith("random:ernie"), own
        monkeypatch.setattr(own, "forward", lambda self, x: torch.nn.functional.gelu(self.dense(x), approximate="tanh"))

    return plant


@pytest.mark.parametrize("model_name", MEMBERS)
def test_a_member_s_baseline_compares_clean_and_a_regression_in_its_own_layer_drifts(
    model_name, capsys, tmp_path, tanh_gelu_in
):
    path = tmp_path / "member.safetensors"
    code, out = _cli(capsys, "baseline", "record", "--out", str(path), "--model", model_name)
    assert code == 0, out
    code, out = _cli(capsys, "baseline", "compare", str(path))
    assert code == 0 and "within tolerance" in out, out
    tanh_gelu_in(model_name)
    code, out = _cli(capsys, "baseline", "compare", str(path))
    assert code == 1 and "DRIFT" in out, out
    assert [line for line in out.splitlines() if line.startswith("  layer 0") and "mlp_post" in line], out
    embeddings = next(line for line in out.splitlines() if line.startswith("  embeddings "))
    assert "!" not in embeddings, out  # the member's embeddings, followed as it computes them, untouched


@pytest.mark.parametrize("model_name", MEMBERS)
def test_walk_follows_a_member_step_by_step_and_marks_a_regression_in_its_own_layer(model_name, capsys, tanh_gelu_in):
    code, out = _cli(capsys, "walk", "--model", model_name)
    assert code == 0 and "every step holds" in out, out
    if "roberta" in model_name:
        assert "ids:      [0, " in out, out  # <s> = 0: RoBERTa's special-token layout
    tanh_gelu_in(model_name)
    code, out = _cli(capsys, "walk", "--model", model_name)
    marked = [line for line in out.splitlines() if "<--" in line]
    assert code == 1 and marked and "intermediate" in marked[0], out
