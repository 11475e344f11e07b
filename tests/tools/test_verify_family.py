"""A layer or model candidate of a BERT-family member is verified against that member's spec: handed the
member's own layer and model, and held to its positions."""

import pytest
import torch

import bertcheck
from bertcheck.spec.reference import ReferenceBert
from bertcheck.subjects.candidate import reference_layer, reference_model


@pytest.fixture(scope="module")
def roberta(model_cache):
    from bertcheck.subjects.subject import Bert

    return Bert.once("random:roberta-tiny", model_cache)


MEMBERS = {
    "random:roberta-tiny": ("roberta", "Roberta"),
    "random:electra-tiny": ("electra", "Electra"),
    "random:ernie-tiny": ("ernie", "Ernie"),
    "random:albert-tiny": ("albert", "Albert"),  # four layers, two groups of shared weights
    "random:distilbert-tiny": ("distilbert", "DistilBert"),  # no token types: its fn is handed None
}


@pytest.mark.parametrize("model_name", MEMBERS)
def test_a_layer_candidate_of_a_member_is_handed_its_layer_and_holds(model_cache, model_name):
    from bertcheck.subjects.subject import Bert

    model_type, prefix = MEMBERS[model_name]
    handed = []

    def factory(hf_layer, config):
        handed.append((type(hf_layer).__name__, config.model_type))
        return reference_layer(hf_layer, config)

    member = Bert.once(model_name, model_cache)
    assert bertcheck.check_layer(factory, member, examples=3, dtypes=(torch.float32,)).passed
    # 5.x: RobertaLayer is BertLayer's subclass, ElectraLayer a copy; 4.x: each its own copy
    # DistilBERT's layer is its TransformerBlock
    layer_class = "TransformerBlock" if model_type == "distilbert" else f"{prefix}Layer"
    assert handed and handed[0][1] == model_type and handed[0][0] in (layer_class, "BertLayer")


@pytest.mark.parametrize("model_name", MEMBERS)
def test_a_model_candidate_of_a_member_is_handed_its_model_and_holds(model_cache, model_name):
    from bertcheck.subjects.subject import Bert

    handed = []

    def factory(hf_model):
        handed.append(type(hf_model).__name__)
        return reference_model(hf_model)  # electra-tiny: embed.* 32 wide, projected to 64; ernie-tiny: task types

    member = Bert.once(model_name, model_cache)
    assert bertcheck.check_model(factory, member, examples=3, dtypes=(torch.float32,)).passed
    assert handed == [f"{MEMBERS[model_name][1]}Model"]


def test_an_engine_that_numbers_roberta_positions_as_bert_s_fails_at_the_embeddings(roberta):
    def bert_positions(hf_model):  # a BERT engine pointed at RoBERTa's weights: positions 0 .. T-1
        reference = ReferenceBert.from_hf(hf_model)

        def fn(input_ids, attention_mask, token_type_ids):
            B, T = input_ids.shape
            with torch.no_grad():
                positions = torch.arange(T, device=input_ids.device).expand(B, T)
                states = [reference.embed(input_ids, token_type_ids, position_ids=positions)["embed.out"]]
                for i in range(reference.n_layers):
                    states.append(reference.layer(i, states[-1], attention_mask)[f"blocks.{i}.resid_post"])
            return {"hidden_states": states}

        return fn

    with pytest.raises(bertcheck.CandidateFailed) as caught:
        bertcheck.check_model(bert_positions, roberta, examples=3, dtypes=(torch.float32,))
    assert "model-equivalence  FAIL" in str(caught.value)
    assert "failed at embeddings, activation 'embed.out'" in str(caught.value)


def test_an_albert_engine_that_unrolls_its_shared_layers_in_the_wrong_order_fails_at_that_layer(model_cache):
    # An exporter that unrolls ALBERT's twelve uses of its groups round-robin (layer i runs group
    # i % num_hidden_groups) where transformers runs them in blocks (i * groups // layers): albert-tiny's
    # layer 1 runs group 1's weights instead of group 0's. Every layer is checked at its own use.
    from bertcheck.subjects.subject import Bert

    albert = Bert.once("random:albert-tiny", model_cache)
    assert albert.config.num_hidden_groups == 2 and albert.config.num_hidden_layers == 4

    def round_robin(hf_model):
        reference = ReferenceBert.from_hf(hf_model)
        runs = {0: 0, 1: 2}  # group -> a layer that runs it: layers 0 and 2 run groups 0 and 1

        def fn(input_ids, attention_mask, token_type_ids):
            with torch.no_grad():
                states = [reference.embed(input_ids, token_type_ids)["embed.out"]]
                for i in range(reference.n_layers):
                    at = runs[i % 2]
                    states.append(reference.layer(at, states[-1], attention_mask)[f"blocks.{at}.resid_post"])
            return {"hidden_states": states}

        return fn

    with pytest.raises(bertcheck.CandidateFailed) as caught:
        bertcheck.check_model(round_robin, albert, examples=3, dtypes=(torch.float32,))
    assert "model-equivalence  FAIL" in str(caught.value)
    assert "failed at layer 1, activation 'blocks.1.resid_post'" in str(caught.value)
