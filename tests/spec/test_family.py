"""The family table: each member's positions as transformers numbers them, and its refusals by name."""

import pytest
import torch
from transformers.models.roberta import modeling_roberta

from bertcheck.spec.family import MEMBERS, NOT_YET, member


def _transformers_positions(ids, padding_idx):
    # 5.x: a static method of RobertaEmbeddings; 4.x: a function of the module
    make = getattr(modeling_roberta.RobertaEmbeddings, "create_position_ids_from_input_ids", None) or getattr(
        modeling_roberta, "create_position_ids_from_input_ids"
    )
    return make(ids, padding_idx)


def test_roberta_positions_skip_padding_exactly_as_transformers_numbers_them():
    ids = torch.tensor([[0, 7592, 2088, 2, 1, 1], [0, 1037, 2172, 2936, 6251, 2], [0, 2, 1, 1, 1, 1]])
    ours = member("roberta").position_ids(ids, padding_idx=1)
    assert ours.tolist() == _transformers_positions(ids, 1).tolist()
    assert ours[0].tolist() == [2, 3, 4, 5, 1, 1]  # real tokens from padding_idx + 1, padding at padding_idx


def test_with_inputs_embeds_roberta_positions_count_every_token_from_padding_idx_plus_one():
    ids = torch.tensor([[0, 7592, 2, 1]])
    assert member("roberta").position_ids(ids, padding_idx=1, embeds=True).tolist() == [[2, 3, 4, 5]]


def test_bert_positions_are_sequential_whatever_the_padding():
    ids = torch.tensor([[101, 7592, 102, 0]])
    assert member("bert").position_ids(ids, padding_idx=0).tolist() == [[0, 1, 2, 3]]
    assert member(None) is MEMBERS["bert"]  # old BERT configs have no model_type


def test_a_roberta_position_table_of_514_rows_holds_512_tokens():
    assert member("roberta").positions_used(514, padding_idx=1) == 512
    assert member("bert").positions_used(512, padding_idx=0) == 512


@pytest.mark.parametrize("model_type", sorted(MEMBERS))
def test_every_member_names_a_transformers_class_that_exists(model_type):
    import transformers

    assert hasattr(transformers, MEMBERS[model_type].model_class)


def test_no_member_is_both_followed_and_refused():
    assert not set(MEMBERS) & set(NOT_YET)


def test_electra_projects_its_embeddings_only_where_their_width_is_not_the_hidden_size():
    from transformers import ElectraConfig

    from bertcheck.spec.family import embedding_width

    small, base = ElectraConfig(), ElectraConfig(embedding_size=768, hidden_size=768)
    assert member("electra").projects(small) and embedding_width(small) == 128
    assert not member("electra").projects(base) and embedding_width(base) == 768
    assert not member("bert").projects(small)  # BERT has no projection, whatever a config carries


def test_albert_layer_i_runs_the_group_transformers_runs_it_with():
    from transformers import AlbertConfig

    for layers, groups in ((12, 1), (4, 2), (12, 5), (6, 6), (10, 3)):
        config = AlbertConfig(num_hidden_layers=layers, num_hidden_groups=groups)
        for i in range(layers):  # AlbertTransformer.forward's own expression
            assert member("albert").group_of(config, i) == int(i / (layers / groups)), (layers, groups, i)


def test_albert_keeps_bert_s_weights_under_its_own_names_one_tensor_per_group():
    from transformers import AlbertConfig

    config = AlbertConfig(num_hidden_layers=4, num_hidden_groups=2)
    albert = member("albert")
    assert albert.weight_key(config, "encoder.layer.1.attention.self.query.weight") == (
        "encoder.albert_layer_groups.0.albert_layers.0.attention.query.weight"
    )
    assert albert.weight_key(config, "encoder.layer.2.output.LayerNorm.bias") == (
        "encoder.albert_layer_groups.1.albert_layers.0.full_layer_layer_norm.bias"
    )
    assert albert.weight_key(config, "pooler.dense.weight") == "pooler.weight"
    assert albert.weight_key(config, "embeddings.LayerNorm.weight") == "embeddings.LayerNorm.weight"
    # BERT's are its own
    bert = member("bert")
    assert (
        bert.weight_key(config, "encoder.layer.3.intermediate.dense.bias") == "encoder.layer.3.intermediate.dense.bias"
    )


def test_every_renamed_module_and_hook_of_albert_exists_in_transformers_albert_model():
    from transformers import AlbertConfig, AlbertModel

    from bertcheck.subjects.capture import hook_points

    config = AlbertConfig(
        hidden_size=64,
        num_attention_heads=4,
        intermediate_size=128,
        embedding_size=32,
        num_hidden_layers=4,
        num_hidden_groups=2,
    )
    modules = dict(AlbertModel(config).named_modules())
    assert all(point.module in modules for point in hook_points(config).values())
    assert member("albert").projects(AlbertConfig(embedding_size=768, hidden_size=768))  # whatever the widths
