"""Never green on a model that was not checked: each checkpoint a user can save is either checked as
what its config says, or refused with one line before any test starts, by pytest, `check`, `walk`,
`verify` and `baseline` alike."""

import json

import pytest
import torch
import transformers

# Inner pytest runs are in-process (see test_plugin): everything heavy is imported before them.
import bertcheck.properties.one_forward  # noqa: F401
import checkpoints
from bertcheck.subjects import audit, subject
from bertcheck.tools import cli
from bertcheck.inputs.cases import Case
from bertcheck.properties.registry import run_model_property
from bertcheck.properties.failures import PropertyFailure, Unavailable
from bertcheck.inputs.cases import LayerCase
from bertcheck.properties.registry import run_layer_property
from bertcheck.subjects.models import ModelError, resolve
from bertcheck.spec.reference import ACTIVATIONS
from bertcheck.subjects.subject import Bert

RELATIVE_SUPPORTED = audit.relative_positions_supported(transformers.__version__)
PAIR = Case((("where is the bank?", "by the river."), ("a", "b c")))
PADDED = Case(("this is a test sentence", "short", ""))


@pytest.fixture(autouse=True)
def isolated_models(monkeypatch):
    monkeypatch.setattr(subject, "_LOADED", {})
    monkeypatch.delenv("BERTCHECK_MODEL", raising=False)


def _refused(path) -> str:
    """The one line a checkpoint is refused with, by resolve (config.json) or by the load."""
    with pytest.raises(ModelError) as caught:
        Bert.load(str(path))
    message = str(caught.value)
    assert "\n" not in message and message.startswith(f"--bert-model {str(path)!r}: "), message
    return message


def _holds(bert: Bert, *properties, cases=(PADDED, PAIR)) -> None:
    for case in cases:
        for dtype in (torch.float32, torch.float64):
            for name in properties:
                assert run_model_property(bert, Case(case.texts, dtype=dtype), name) <= 1.0


# ---- weights: transformers' own loading report ----------------------------------------------------


def test_weights_under_a_prefix_are_refused_listing_what_did_not_load(tmp_path, tiny):
    path = checkpoints.save(tmp_path / "ckpt", tiny, rename=lambda key: f"model.{key}")
    message = _refused(path)
    assert "not checked: " in message
    assert "encoder weights are missing from the checkpoint (transformers left them at their random init)" in message
    assert (
        "embeddings.LayerNorm.bias" in message and "weights in the checkpoint were not loaded by BertModel" in message
    )
    assert "stored under the prefix 'model.'" in message


def test_a_missing_encoder_weight_is_refused_by_name(tmp_path, tiny):
    path = checkpoints.save(
        tmp_path / "ckpt", tiny, rename=lambda key: key.replace("layer.1.output.dense.bias", "gone")
    )
    message = _refused(path)
    assert "1 encoder weights are missing" in message and "encoder.layer.1.output.dense.bias" in message


def test_a_task_checkpoint_is_checked_and_says_its_head_and_pooler_are_not(tmp_path, tiny):
    from transformers import BertForMaskedLM

    BertForMaskedLM(tiny.config).save_pretrained(str(tmp_path))  # bert.* encoder, cls.* head
    tiny.tokenizer.save_pretrained(str(tmp_path))
    bert = Bert.load(str(tmp_path))
    assert any("task head weights (cls) in the checkpoint: not loaded, not checked" in n for n in bert.notes), (
        bert.notes
    )
    _holds(bert, "hidden-states", cases=(PADDED,))
    # No pooler in a masked-LM checkpoint: transformers makes a random one, which is never checked.
    assert audit.NO_POOLER in bert.notes
    with pytest.raises(Unavailable, match="no pooler in the checkpoint"):
        run_model_property(bert, PADDED, "pooler")


# ---- the config audit ---------------------------------------------------------------------------


def test_every_activation_the_config_can_name_is_checked_or_refused_as_parametric():
    from transformers.activations import ACT2CLS

    assert set(audit.ACTIVATIONS) == set(ACTIVATIONS)
    assert {name for name in ACT2CLS if name not in ACTIVATIONS} <= {"prelu", "xielu"}


@pytest.mark.parametrize("name", sorted(set(ACTIVATIONS) & set(transformers.activations.ACT2CLS)))
def test_each_activation_formula_equals_transformers_own_in_float64(name):
    x = torch.cat([torch.linspace(-30, 30, 2001, dtype=torch.float64), torch.tensor([0.0, 1e-8, -1e-8, 20.5, 21.0])])
    hf = transformers.activations.ACT2FN[name].double()
    torch.testing.assert_close(ACTIVATIONS[name](x), hf(x), rtol=1e-13, atol=1e-13)


@pytest.mark.parametrize("act", ["gelu_python", "silu", "relu", "gelu_new", "quick_gelu", "mish"])
def test_a_checkpoint_is_checked_against_the_activation_its_config_names(tmp_path, tiny, act):
    bert = Bert.load(str(checkpoints.save(tmp_path / act, tiny, config={"hidden_act": act})))
    _holds(bert, "intermediate-width", "hidden-states")
    assert (
        run_layer_property(
            bert, LayerCase(layer=1, batch=2, tokens=6, pad=2, scale="unit", seed=1), "layer-equivalence"
        )
        <= 1
    )


def test_a_model_that_computes_another_activation_than_its_config_names_fails_at_mlp_post(tmp_path, tiny, fresh):
    bert = Bert.load(str(checkpoints.save(tmp_path / "silu", tiny, config={"hidden_act": "silu"})))
    layer = bert.model().encoder.layer[1]
    layer.intermediate.intermediate_act_fn = torch.nn.GELU()  # the config says silu
    with pytest.raises(PropertyFailure) as caught:
        run_model_property(bert, PADDED, "intermediate-width")
    report = str(caught.value)
    assert "failed at layer 1, activation 'blocks.1.mlp_post'" in report
    assert "mlp_post == silu(mlp_pre), config.hidden_act" in report


@pytest.mark.parametrize(
    "config, says",
    [
        ({"hidden_act": "prelu"}, "hidden_act='prelu': a parametric activation"),
        ({"hidden_act": "swiglu"}, "hidden_act='swiglu': no reference for it"),
        ({"is_decoder": True}, "is_decoder=True: a decoder attends causally"),
        ({"add_cross_attention": True}, "add_cross_attention=True: each layer carries cross-attention weights"),
        ({"chunk_size_feed_forward": 4}, "chunk_size_feed_forward=4: the feed-forward runs in chunks"),
        ({"position_embedding_type": "rotary"}, "position_embedding_type='rotary': BERT has absolute"),
        ({"type_vocab_size": 0}, "type_vocab_size=0: need at least 1 token type"),
        ({"hidden_dropout_prob": 1.0}, "hidden_dropout_prob=1.0: need 0 <= p < 1"),
        (
            {"model_type": None, "architectures": ["GPT2Model"]},
            'config.json has no model_type and no Bert architecture; if it is a BERT, add "model_type": "bert"',
        ),
    ],
    ids=[
        "prelu",
        "unknown activation",
        "is_decoder",
        "cross-attention",
        "chunked",
        "rotary",
        "no token types",
        "dropout 1",
        "no model_type",
    ],
)
def test_a_config_the_reference_does_not_implement_is_refused_before_loading_naming_the_field(
    tmp_path, tiny, config, says
):
    path = checkpoints.save(tmp_path / "ckpt", tiny, config=config)
    with pytest.raises(ModelError) as caught:
        resolve(str(path))  # config.json alone: before pytest collects a test, before torch loads a weight
    assert says in str(caught.value) and "\n" not in str(caught.value)


def test_a_config_without_model_type_is_accepted_when_its_architecture_is_bert(tmp_path, tiny):
    path = checkpoints.save(tmp_path / "ckpt", tiny, config={"model_type": None, "architectures": ["BertModel"]})
    _holds(Bert.load(str(path)), "hidden-states", cases=(PADDED,))


@pytest.mark.parametrize("kind", audit.RELATIVE)
def test_relative_position_scores_are_checked_where_transformers_implements_them_and_refused_where_not(
    tmp_path, tiny, kind
):
    path = checkpoints.save(
        tmp_path / kind, tiny, config={"position_embedding_type": kind}, extra=checkpoints.distance_embeddings(tiny)
    )
    if not RELATIVE_SUPPORTED:
        with pytest.raises(ModelError) as caught:
            resolve(str(path))
        assert (
            f"position_embedding_type={kind!r}: transformers {transformers.__version__}'s BertModel does not "
            f"implement it (it drops the distance_embedding weights" in str(caught.value)
        )
        return
    bert = Bert.load(str(path))
    _holds(bert, "hidden-states", "attention-pattern", "residual-identity")
    case = LayerCase(layer=0, batch=2, tokens=9, pad=3, scale="unit", seed=2)
    assert run_layer_property(bert, case, "layer-equivalence") <= 1.0
    assert run_model_property(bert, PADDED, "gradients") <= 1.0
    # A layer that forgets its relative scores is caught where it forgets them.
    bert.model().encoder.layer[1].attention.self.position_embedding_type = "absolute"
    with pytest.raises(PropertyFailure, match=r"failed at layer 1, activation 'blocks\.1\.z'"):
        run_model_property(bert, PADDED, "hidden-states")


def test_one_token_type_draws_no_pairs_and_says_so(tmp_path, tiny):
    from hypothesis import given, settings

    from bertcheck.inputs.strategies import cases

    path = checkpoints.save(
        tmp_path / "ckpt",
        tiny,
        config={"type_vocab_size": 1},
        rename=lambda k: k,
        extra={"embeddings.token_type_embeddings.weight": torch.randn(1, 64)},
    )
    bert = Bert.load(str(path))
    assert "type_vocab_size=1: one token type, so no sentence pairs are drawn" in bert.notes

    @settings(max_examples=15, database=None, deadline=None)
    @given(case=cases(long=False, max_batch=2))
    def padding_on_every_drawn_input(case):
        run_model_property(bert, case, "padding")  # pairs are rejected before any forward, never an IndexError

    padding_on_every_drawn_input()
    with pytest.raises(ValueError, match="has type_vocab_size=1: it takes no sentence pairs"):
        bert.encode(PAIR)


def test_a_float16_checkpoint_is_checked_from_an_upcast_copy_and_says_so(tmp_path, tiny):
    bert = Bert.load(str(checkpoints.save(tmp_path / "ckpt", tiny, dtype=torch.float16)))
    assert any(note.startswith("weights stored in float16: checked from an upcast float32 copy") for note in bert.notes)
    assert next(bert.model().parameters()).dtype == torch.float32
    _holds(bert, "hidden-states", cases=(PADDED,))


def test_the_readme_lists_every_audited_config_field():
    from pathlib import Path

    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    for row in audit.FIELDS:
        assert f"| `{row.name}` |" in readme, row.name


# ---- every entry point agrees --------------------------------------------------------------------


def _entry_points(path):
    return {
        "check": ["check", "hidden-states", "--model", str(path), "--texts", '["a b"]'],
        "check-layer": ["check-layer", "layer-equivalence", "--model", str(path)],
        "walk": ["walk", "--model", str(path)],
        "verify": [
            "verify",
            "--impl",
            "bertcheck.subjects.candidate:reference_layer",
            "--model",
            str(path),
            "--examples",
            "2",
        ],
        "baseline": ["baseline", "record", "--out", str(path.parent / "b.safetensors"), "--model", str(path)],
    }


def test_every_command_refuses_the_same_checkpoint_with_the_same_line_and_exit_2(tmp_path, tiny, capsys):
    path = checkpoints.save(tmp_path / "ckpt", tiny, config={"hidden_act": "prelu"})
    for name, args in _entry_points(path).items():
        assert cli.main(args) == 2, name
        err = capsys.readouterr().err
        assert "hidden_act='prelu': a parametric activation" in err and "Traceback" not in err, (name, err)


def test_every_command_checks_a_configured_activation_alike(tmp_path, tiny, capsys):
    path = checkpoints.save(tmp_path / "ckpt", tiny, config={"hidden_act": "silu"})
    for name, args in _entry_points(path).items():
        assert cli.main(args) == 0, (name, capsys.readouterr())
        capsys.readouterr()


# ---- pytest: refused before collection, said in the header ---------------------------------------

PROPERTY = """
from hypothesis import given, settings
from bertcheck.properties.registry import run_model_property
from bertcheck.inputs.strategies import cases

@settings(max_examples=2, database=None)
@given(case=cases(long=False, max_batch=2))
def test_hidden_states(bert, case):
    run_model_property(bert, case, "hidden-states")
"""


def test_pytest_refuses_a_checkpoint_whose_weights_did_not_load_before_any_test(pytester, tmp_path, tiny):
    path = checkpoints.save(tmp_path / "ckpt", tiny, rename=lambda key: f"model.{key}")
    pytester.makepyfile(test_p=PROPERTY)
    result = pytester.runpytest("test_p.py", "--bert-model", str(path), "-p", "no:cacheprovider")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([f"ERROR: --bert-model '{path}': not checked: * encoder weights are missing*"])
    assert "collected" not in result.stdout.str()


def test_pytest_under_xdist_refuses_it_before_any_worker_starts(pytester, tmp_path, tiny):
    path = checkpoints.save(tmp_path / "ckpt", tiny, rename=lambda key: f"model.{key}")
    pytester.makepyfile(test_p=PROPERTY)
    result = pytester.runpytest_subprocess("test_p.py", "-n", "2", "--bert-model", str(path), "-p", "no:cacheprovider")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert "INTERNALERROR" not in result.stdout.str() + result.stderr.str()
    result.stderr.fnmatch_lines(["ERROR: --bert-model *: not checked: * encoder weights are missing*"])


def test_the_run_header_says_what_is_checked_and_how(pytester, tmp_path, tiny):
    path = checkpoints.save(tmp_path / "ckpt", tiny, dtype=torch.float16)
    pytester.makepyfile(test_p=PROPERTY)
    result = pytester.runpytest("test_p.py", "--bert-model", str(path), "-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(
        [
            f"bertcheck: {path} (not checked: any task head)",
            f"bertcheck: {path}: weights stored in float16: checked from an upcast float32 copy*",
        ]
    )


def test_the_config_json_of_a_saved_checkpoint_round_trips_the_audit(tmp_path, tiny):
    path = checkpoints.save(tmp_path / "ckpt", tiny)
    values = json.loads((path / "config.json").read_text())
    assert audit.audit_config(values, transformers.__version__).refusals == []
