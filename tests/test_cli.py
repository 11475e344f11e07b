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


def test_a_layer_property_reruns_from_its_reproduce_line(capsys):
    args = "check-layer permutation --model random:tiny --layer 1 --batch 2 --tokens 5 --pad 2 --scale low --seed 3"
    assert cli.main(args.split()) == 0
    assert capsys.readouterr().out.startswith("permutation: holds on random:tiny")


def test_a_layer_the_model_does_not_have_exits_2(capsys):
    assert cli.main("check-layer permutation --model random:tiny --layer 5".split()) == 2
    assert capsys.readouterr().err.startswith("bertcheck: --layer 5: random:tiny has layers 0 to 1")
