"""Every member of the family the reference follows, in its own transformers class (in 4.x each is its
own copy of BertLayer, where a regression can land in one copy and not the others), holds the invariants
and per-layer equivalence; at hidden 64, so that every member runs in every tests/ run."""

import pytest
import torch
from bertcheck.inputs.cases import Case
from bertcheck.properties.registry import run_model_property
from bertcheck.spec.family import MEMBERS
from bertcheck.subjects.models import RANDOM_CONFIGS, _minilm_dir, model_class, randomize_, wordpiece
from bertcheck.subjects.subject import Bert

TINY = {"hidden_size": 64, "num_hidden_layers": 2, "num_attention_heads": 4, "intermediate_size": 256}
# Each member's random config (RANDOM_CONFIGS) at hidden 64: its positions, eps, special tokens and vocab.
BASES = {
    "bert": "bert-base-uncased",
    "electra": "electra-small-discriminator",
    "roberta": "roberta-base",
    "xlm-roberta": "xlm-roberta-base",
    "camembert": "camembert-base",
    "data2vec-text": "data2vec-text-base",
}
CHECKS = ("hidden-states", "residual-identity", "layernorm", "intermediate-width", "padding", "form-inputs-embeds")


def _tiny_member(model_type: str) -> Bert:
    from transformers import AutoConfig

    keywords = {**RANDOM_CONFIGS[BASES[model_type]], **TINY}
    keywords.pop("model_type", None)
    if model_type == "electra":
        keywords["embedding_size"] = 32  # projected to 64, as ELECTRA-small's 128 to 256
    model = model_class(model_type)(AutoConfig.for_model(model_type, **keywords))
    randomize_(model)
    return Bert(f"tiny {model_type}", model.eval(), wordpiece(_minilm_dir(), MEMBERS[model_type]))


def test_every_member_the_reference_follows_is_tested_here():
    assert set(BASES) == set(MEMBERS)


@pytest.mark.parametrize("model_type", sorted(BASES))
def test_each_member_in_its_own_class_holds_the_invariants_and_equivalence(model_type):
    bert = _tiny_member(model_type)
    assert type(bert.model()).__name__ == MEMBERS[model_type].model_class
    for case in (Case(("this is a test sentence", "short")), Case(("one",), dtype=torch.float64)):
        for check in CHECKS:
            assert run_model_property(bert, case, check) <= 1.0, (model_type, check)
