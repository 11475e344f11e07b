"""Every property can fail: each broken model below must be caught, by the right property, at the
right layer and activation, with a message that says so."""

import pytest
import torch

import mutants
from bertcheck.inputs.cases import Case
from bertcheck.subjects._compat import attention_implementations
from bertcheck.properties.input_forms import FORMS, lacked
from bertcheck.properties.registry import MODEL, run_model_property
from bertcheck.properties.failures import PropertyFailure

SEED = Case(("this is a test sentence",))
PADDED = Case(("this is a test sentence", "short"))
PAIR = Case((("this is a test", "sentence pair"),))

# id: (model, dtype, break it, input, property that must catch it, where, activation, words in the message)
BROKEN = {
    "pooler without its tanh": (
        "minilm",
        torch.float32,
        mutants.pooler_without_tanh,
        SEED,
        "pooler",
        "the pooler",
        "pooler.out",
        "the reference pooler fed HF's own last hidden state",
    ),
    "pooler on the last token": (
        "random:tiny",
        torch.float64,
        mutants.pooler_on_the_last_token,
        PADDED,
        "pooler",
        "the pooler",
        "pooler.pre",
        "the reference pooler",
    ),
    "attention residual dropped": (
        "random:tiny",
        torch.float32,
        lambda m: mutants.attention_residual_dropped(m, 1),
        SEED,
        "residual-identity",
        "layer 1",
        "blocks.1.ln1_in",
        "ln1_in == attn_out + resid_pre",
    ),
    "ffn residual dropped": (
        "random:tiny",
        torch.float32,
        lambda m: mutants.ffn_residual_dropped(m, 0),
        SEED,
        "residual-identity",
        "layer 0",
        "blocks.0.ln2_in",
        "ln2_in == mlp_out + resid_mid",
    ),
    "second residual from the layer input": (
        "minilm",
        torch.float32,
        lambda m: mutants.ffn_residual_from_layer_input(m, 3),
        SEED,
        "residual-identity",
        "layer 3",
        "blocks.3.ln2_in",
        "resid_mid",
    ),
    "uncentred LayerNorm": (
        "random:tiny",
        torch.float32,
        lambda m: mutants.layernorm_uncentered(m, "ln2", 1),
        SEED,
        "layernorm",
        "layer 1",
        "blocks.1.resid_post",
        "per-token mean of z is 0",
    ),
    "LayerNorm eps 1e-5 for 1e-12": (
        "random:tiny",
        torch.float64,
        lambda m: mutants.layernorm_eps(m, "ln1", 0),
        SEED,
        "layernorm",
        "layer 0",
        "blocks.0.resid_mid",
        "variance of z is v/(v+eps), eps=1e-12",
    ),
    "LayerNorm eps 1e-5 on the trained model": (
        "minilm",
        torch.float64,
        lambda m: mutants.layernorm_eps(m, "ln2", 5),
        SEED,
        "layernorm",
        "layer 5",
        "blocks.5.resid_post",
        "variance",
    ),
    "LayerNorm affine ignored": (
        "random:tiny",
        torch.float32,
        lambda m: mutants.layernorm_affine_ignored(m, "embeddings"),
        SEED,
        "layernorm",
        "embeddings",
        "embed.out",
        "gamma * z + beta",
    ),
    "tanh GELU": (
        "minilm",
        torch.float32,
        lambda m: mutants.tanh_gelu(m, 2),
        SEED,
        "intermediate-width",
        "layer 2",
        "blocks.2.mlp_post",
        "exact erf GELU",
    ),
    "half-width feed-forward": (
        "random:tiny",
        torch.float32,
        lambda m: mutants.narrow_ffn(m, 1),
        SEED,
        "intermediate-width",
        "layer 1",
        "blocks.1.mlp_pre",
        "config.intermediate_size = 256",
    ),
    "layer output dropped": (
        "random:tiny",
        torch.float32,
        lambda m: mutants.layer_output_dropped(m, 1),
        SEED,
        "hidden-states",
        "layer 1",
        "hidden_states[2]",
        "is layer 1's output",
    ),
    "attention mask ignored": (
        "random:tiny",
        torch.float32,
        lambda m: mutants.attention_mask_ignored(m, 0),
        PADDED,
        "hidden-states",
        "layer 0",
        "blocks.0.z",
        "reference layer 0 z",
    ),
    "token types ignored": (
        "random:tiny",
        torch.float32,
        mutants.token_types_ignored,
        PAIR,
        "hidden-states",
        "embeddings",
        "embed.token_types",
        "reference embed.token_types",
    ),
    "tanh GELU, seen per layer": (
        "minilm",
        torch.float32,
        lambda m: mutants.tanh_gelu(m, 2),
        SEED,
        "hidden-states",
        "layer 2",
        "blocks.2.mlp_post",
        "reference layer 2 mlp_post",
    ),
    # Properties that compare whole forwards.
    "mask-blind attention, seen in the pattern": (
        "random:tiny",
        torch.float32,
        lambda m: mutants.attention_mask_ignored(m, 0),
        PADDED,
        "attention-pattern",
        "layer 0",
        "blocks.0.pattern",
        "padded keys get exactly 0",
    ),
    "mask-blind attention, seen through padding": (
        "minilm",
        torch.float32,
        lambda m: mutants.attention_mask_ignored(m, 4),
        PADDED,
        "padding",
        "layer 4",
        "blocks.4.resid_post",
        "ids at padded positions",
    ),
    "LayerNorm across the batch": (
        "random:tiny",
        torch.float32,
        mutants.normalized_across_the_batch,
        PADDED,
        "batching",
        "embeddings",
        "embed.out",
        "text 0 of the batch == the same text alone",
    ),
    "default positions start at 1": (
        "random:tiny",
        torch.float32,
        mutants.default_positions_shifted,
        SEED,
        "form-positions-arange",
        "embeddings",
        "embed.out",
        "position_ids given as arange (eager) == the plain call (hidden_states[0])",
    ),
    "RoBERTa positions without the padding offset": (
        "random:roberta-tiny",
        torch.float32,
        mutants.roberta_positions_without_padding_offset,
        PADDED,
        "hidden-states",
        "embeddings",
        "embed.positions",
        "embed.positions == reference embed.positions",
    ),
    "ELECTRA without its embeddings projection": (
        "random:electra-tiny",
        torch.float32,
        mutants.electra_projection_skipped,
        PADDED,
        "hidden-states",
        "embeddings",
        "embed.out",
        "hidden_states[0] (the embeddings' output) == reference embeddings",
    ),
    "ERNIE without its task-type embeddings": (
        "random:ernie-tiny",
        torch.float32,
        mutants.ernie_task_types_dropped,
        PADDED,
        "hidden-states",
        "embeddings",
        "embed.task_types",
        "module embeddings.task_type_embeddings runs once per forward",
    ),
    "ALBERT running group 0's shared layer at every layer": (
        "random:albert-tiny",
        torch.float32,
        mutants.albert_every_layer_runs_group_0,
        PADDED,
        "hidden-states",
        "layer 2",
        "blocks.2.resid_pre",
        "module encoder.albert_layer_groups.1.albert_layers.0 runs once per forward",
    ),
    "DistilBERT with its attention mask inverted": (
        "random:distilbert-tiny",
        torch.float32,
        mutants.distilbert_mask_inverted,
        PADDED,
        "hidden-states",
        "layer 0",
        "blocks.0.z",
        "z == reference layer 0 z, fed hidden_states[0]",
    ),
    "dropout in eval mode": (
        "random:tiny",
        torch.float32,
        lambda m: mutants.dropout_in_eval(m, 1),
        SEED,
        "determinism",
        "layer 1",
        "blocks.1.resid_post",
        "a second forward == the first",
    ),
    "dropout on the residual stream": (
        "minilm",
        torch.float32,
        lambda m: mutants.dropout_on_the_residual_stream(m, 2),
        SEED,
        "dropout",
        "layer 2",
        "blocks.2.ln1_in",
        "ln1_in == resid_pre + dropout(attn_out)",
    ),
    "train mode drifts beyond dropout": (
        "random:tiny",
        torch.float32,
        lambda m: mutants.different_in_training(m, 0),
        SEED,
        "dropout",
        "layer 0",
        "blocks.0.resid_post",
        "train mode with p = 0 == eval",
    ),
    "residual dropped, seen in bfloat16": (
        "minilm",
        torch.bfloat16,
        lambda m: mutants.ffn_residual_dropped(m, 0),
        PADDED,
        "precision",
        "layer 0",
        "blocks.0.resid_post",
        "bfloat16 on cpu == float64 reference",
    ),
    "an infinite output": (
        "random:tiny",
        torch.float32,
        lambda m: mutants.infinite_first_token(m, 1),
        PADDED,
        "precision",
        "layer 1",
        "blocks.1.resid_post",
        "finite at every real token",
    ),
    "output shifts when hidden states are asked for": (
        "random:tiny",
        torch.float32,
        mutants.hidden_states_request_changes_the_output,
        SEED,
        "form-hidden-states-unasked",
        "layer 1",
        "blocks.1.resid_post",
        "output_hidden_states not asked (last_hidden_state alone) (eager) == the plain call",
    ),
    "a blank row shifts its neighbours": (
        "random:tiny",
        torch.float32,
        mutants.normalized_across_the_batch,
        SEED,
        "padded-row",
        "embeddings",
        "embed.out",
        "other rows unchanged by a fully padded row",
    ),
    "a LayerNorm with a wrong backward": (
        "random:tiny",
        torch.float64,
        lambda m: mutants.layernorm_wrong_backward(m, "ln2", 0),
        SEED,
        "gradients",
        "embeddings",
        "inputs_embeds",
        "d loss / d inputs_embeds == reference",
    ),
    "one bias given twice its gradient": (
        "random:tiny",
        torch.float64,
        lambda m: mutants.output_bias_gradient_doubled(m, 1),
        SEED,
        "gradients",
        "layer 1",
        "encoder.layer.1.output.dense.bias",
        "d loss / d encoder.layer.1.output.dense.bias == reference",
    ),
}


@pytest.mark.parametrize("broken", BROKEN, ids=list(BROKEN))
def test_each_broken_model_fails_the_property_that_guards_it(fresh, broken):
    model_name, dtype, breaks, case, check, where, activation, words = BROKEN[broken]
    bert = fresh(model_name, dtype)
    breaks(bert.model(dtype))
    case = Case(case.texts, dtype=dtype)
    with pytest.raises(PropertyFailure) as caught:
        run_model_property(bert, case, check)
    failure = caught.value
    assert (failure.key, failure.where, failure.activation) == (check, where, activation), str(failure)
    report = str(failure)
    assert f"failed at {where}, activation '{activation}'" in report
    assert words in report
    assert "Reproduce:\n  python -m bertcheck check " + check in report


@pytest.mark.parametrize("check", [k for k in MODEL if k != "eager-sdpa"])
@pytest.mark.parametrize("model_name", ["random:tiny", "minilm"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=["float32", "float64"])
def test_every_property_holds_on_the_unbroken_models(fresh, model_name, dtype, check):
    # The other half of the mutant tests: the same inputs pass when nothing is broken.
    if check.startswith("form-") and lacked(FORMS[check.removeprefix("form-")]):
        pytest.skip(lacked(FORMS[check.removeprefix("form-")]))
    bert = fresh(model_name, dtype)
    for case in (SEED, PADDED, PAIR):
        assert run_model_property(bert, Case(case.texts, dtype=dtype), check) <= 1.0


@pytest.mark.parametrize("check", [k for k in MODEL if k != "eager-sdpa"])
@pytest.mark.parametrize("model_name", ["random:roberta-tiny", "random:electra-tiny", "random:ernie-tiny"])
def test_every_property_holds_on_an_unbroken_family_member(fresh, model_name, check):
    # RoBERTa's positions skip padding: the padded batch is where a reference that numbered them as BERT's
    # would part from HF's RobertaModel. ELECTRA-tiny projects its 32-wide embeddings to 64.
    if check.startswith("form-") and lacked(FORMS[check.removeprefix("form-")]):
        pytest.skip(lacked(FORMS[check.removeprefix("form-")]))
    bert = fresh(model_name)
    if check == "pooler" and bert.lacks_pooler:  # ELECTRA has none
        pytest.skip(bert.lacks_pooler)
    for case in (SEED, PADDED):
        assert run_model_property(bert, case, check) <= 1.0


def test_every_property_that_runs_in_bfloat16_holds_there(fresh):
    bert = fresh("minilm", torch.bfloat16)
    for case in (SEED, PADDED, PAIR):
        assert run_model_property(bert, Case(case.texts, dtype=torch.bfloat16), "precision") <= 1.0


def test_an_sdpa_kernel_that_drifts_from_eager_is_caught(fresh, monkeypatch):
    if len(attention_implementations()) < 2:
        pytest.skip("this transformers has only eager attention for BERT: no second implementation to compare")
    bert = fresh("minilm")
    assert run_model_property(bert, PADDED, "eager-sdpa") <= 1.0
    mutants.broken_sdpa(monkeypatch)
    with pytest.raises(PropertyFailure) as caught:
        run_model_property(bert, PADDED, "eager-sdpa")
    assert (caught.value.where, caught.value.activation) == ("layer 0", "blocks.0.resid_post")
    assert "sdpa == eager (hidden_states[1])" in str(caught.value)


def test_a_layer_that_never_runs_is_reported_by_name(fresh):
    bert = fresh()
    model = bert.model()
    model.encoder.layer[1].attention.output.LayerNorm = torch.nn.Identity()  # its hooks are on the old module

    class Skip(torch.nn.Module):  # keeps the width, so only the missing module can be the complaint
        def forward(self, x):
            return x.repeat(1, 1, 4)

    model.encoder.layer[0].intermediate = Skip()
    with pytest.raises(PropertyFailure) as caught:
        run_model_property(bert, SEED, "intermediate-width")
    assert caught.value.activation == "blocks.0.mlp_pre"
    assert "it never ran" in str(caught.value)


def test_a_forward_that_crashes_is_reported_with_the_model_and_input(fresh):
    from bertcheck.subjects.subject import ForwardError

    bert = fresh()
    bert.model().encoder.layer[0].intermediate = torch.nn.Identity()  # 64 wide where output.dense wants 256
    with pytest.raises(ForwardError) as caught:
        run_model_property(bert, SEED, "hidden-states")
    message = str(caught.value)
    assert message.startswith("the forward of random:tiny raised RuntimeError")
    assert "this is a test sentence" in message


class _FloatDropout(torch.nn.Module):
    """Dropout read from a float attribute at each call, as the SDPA attention of transformers 4.41-4.57
    holds it (`dropout_prob`): setting every `nn.Dropout.p` to 0 does not reach it."""

    def __init__(self, p: float):
        super().__init__()
        self.dropout_prob = p

    def forward(self, x):
        return torch.nn.functional.dropout(x, self.dropout_prob, self.training)


def test_the_dropout_property_holds_wherever_a_release_keeps_its_dropout_probability(fresh):
    bert = fresh("random:tiny")
    model = bert.model()
    for layer in model.encoder.layer:  # the sublayer outputs' dropout, called as a module by every release
        layer.attention.output.dropout = _FloatDropout(bert.config.hidden_dropout_prob)
        layer.output.dropout = _FloatDropout(bert.config.hidden_dropout_prob)
    for case in (SEED, PADDED, Case(("",))):  # the empty sentence is where 4.41-4.57 shrank the false alarm to
        assert run_model_property(bert, case, "dropout") == 0.0
    with torch.no_grad():  # and that dropout is live in train mode: the twin is what switched it off
        model.train()
        inputs = bert.encode(SEED)
        torch.manual_seed(0)
        first = model(**inputs).last_hidden_state
        torch.manual_seed(1)
        assert not torch.equal(first, model(**inputs).last_hidden_state)
        model.eval()
