import pytest

from bertcheck import cli


def test_a_property_that_holds_exits_0_and_says_so(capsys):
    assert cli.main(["check", "layernorm", "--model", "random:tiny", "--texts", '["this is a test sentence"]']) == 0
    assert capsys.readouterr().out.startswith("layernorm: holds on random:tiny (float32, cpu); worst error ")


def test_a_failing_property_exits_1_with_the_report(capsys, monkeypatch, fresh):
    import mutants
    from bertcheck.subject import Bert

    broken = fresh("random:tiny")
    mutants.tanh_gelu(broken.model(), 0)
    monkeypatch.setattr(Bert, "load", classmethod(lambda cls, spec, cache_dir=None: broken))
    code = cli.main(["check", "hidden-states", "--model", "random:tiny", "--dtype", "float32", "--texts", '["a b c"]'])
    assert code == 1
    assert "failed at layer 0, activation 'blocks.0.mlp_post'" in capsys.readouterr().out


@pytest.mark.parametrize(
    "args, message",
    [
        (["--model", "nope", "--texts", '["a"]'], "bertcheck: --bert-model 'nope': unknown model"),
        (["--texts", "not json"], "bertcheck: --texts is not JSON"),
        (["--texts", "[]"], "bertcheck: --texts must be a non-empty JSON list"),
        (["--texts", '["a"]', "--device", "cuda:7"], "bertcheck: --device 'cuda:7' is not available here"),
    ],
)
def test_input_that_cannot_run_exits_2_with_one_line(capsys, args, message):
    assert cli.main(["check", "layernorm", *args]) == 2
    err = capsys.readouterr().err
    assert err.startswith(message)
    assert "Traceback" not in err
