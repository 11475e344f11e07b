import pytest
import torch

from bertcheck.spec.reference import ReferenceBert, gelu, layer_norm


def test_layer_norm_by_hand_matches_torch_in_float64():
    x = torch.randn(3, 5, 16, dtype=torch.float64)
    w, b = torch.randn(16, dtype=torch.float64), torch.randn(16, dtype=torch.float64)
    torch.testing.assert_close(
        layer_norm(x, w, b, 1e-12), torch.nn.functional.layer_norm(x, (16,), w, b, 1e-12), rtol=0, atol=1e-14
    )


def test_gelu_is_the_exact_erf_form_not_the_tanh_approximation():
    x = torch.linspace(-6, 6, 1001, dtype=torch.float64)
    torch.testing.assert_close(gelu(x), torch.nn.functional.gelu(x), rtol=0, atol=1e-15)
    assert (gelu(x) - torch.nn.functional.gelu(x, approximate="tanh")).abs().max() > 1e-4


def test_every_weight_shape_is_checked_against_the_config_first(tiny):
    state = dict(tiny.model().state_dict())
    state["encoder.layer.1.intermediate.dense.weight"] = torch.zeros(128, 64)
    with pytest.raises(
        ValueError,
        match=r"'encoder.layer.1.intermediate.dense.weight' has shape \(128, 64\), the config implies \(256, 64\)",
    ):
        ReferenceBert(state, tiny.config)


def test_a_state_dict_that_is_not_a_bert_is_refused_by_name(tiny):
    state = {k: v for k, v in tiny.model().state_dict().items() if "token_type" not in k}
    with pytest.raises(KeyError, match="no weight 'embeddings.token_type_embeddings.weight'"):
        ReferenceBert(state, tiny.config)


def test_the_reference_computes_every_name_and_float64_on_demand(tiny):
    ref = tiny.reference(torch.float64)
    ids = torch.tensor([[101, 2023, 102, 0]])
    acts = ref.forward(ids, torch.tensor([[1, 1, 1, 0]]))
    assert acts["blocks.1.pattern"].dtype == torch.float64
    assert acts["blocks.0.pattern"].shape == (1, 4, 4, 4)
    # Padded keys get no attention.
    assert float(acts["blocks.0.pattern"][..., 3].abs().max()) == 0.0


def test_a_layer_keeping_some_activations_runs_a_few_rows_at_a_time_and_gives_the_same(tiny, monkeypatch):
    import bertcheck.spec.reference as reference
    from bertcheck.spec.names import layer_name

    ref = tiny.reference(torch.float64)
    x = torch.randn(5, 7, tiny.config.hidden_size, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    mask = torch.ones(5, 7, dtype=torch.long)
    mask[1, 4:] = 0
    kept = [layer_name(1, "resid_post"), layer_name(1, "pattern")]
    whole = ref.layer(1, x, mask)
    # Two rows' scores fit the budget: chunks of 2, 2 and 1 rows.
    monkeypatch.setattr(reference, "CHUNK_BYTES", 2 * tiny.config.num_attention_heads * 7 * 7 * 8)
    chunked = ref.layer_keeping(1, x, mask, kept)
    assert sorted(chunked) == sorted(kept)
    for name in kept:
        torch.testing.assert_close(chunked[name], whole[name], rtol=0, atol=1e-13)
