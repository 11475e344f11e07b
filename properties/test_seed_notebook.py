"""The seed notebook, step by step: 'this is a test sentence' through layer 0's HF submodules.

layer.attention.self -> layer.attention.output(., embeddings) -> layer.intermediate -> layer.output(., attn_output)
must reproduce hidden_states[1], and the reference must agree at every step (ALBERT: the same walk through
its own submodules, as DistilBERT's).
"""

import inspect

import pytest
import torch

from bertcheck.inputs.cases import Case
from bertcheck.spec.family import layer_of
from bertcheck.spec.compare import differences
from bertcheck.subjects.models import EMBEDDED
from bertcheck.spec.names import layer_name
from bertcheck.spec.tolerances import tolerances_for

SENTENCE = "this is a test sentence"
BERT_BASE_UNCASED_IDS = [101, 2023, 2003, 1037, 3231, 6251, 102]


def assert_close(actual, expected, what):
    __tracebackhide__ = True
    mismatch, _ = differences(actual, expected, tolerances_for(actual.dtype).values)
    assert mismatch is None, f"{what}:\n  " + "\n  ".join(mismatch.lines())


def test_the_seed_sentence_tokenizes_to_the_notebook_ids(bert):
    if bert.model_name not in EMBEDDED and len(bert.tokenizer) != 30522:
        pytest.skip(f"{bert.model_name}'s tokenizer is not the bert-base-uncased WordPiece vocab")
    ids = bert.encode(Case((SENTENCE,)))["input_ids"]
    specials = dict(bert.member.specials)  # a RoBERTa-family random model: the same words, <s> ... </s>
    assert ids.tolist() == [[specials["cls"], *BERT_BASE_UNCASED_IDS[1:-1], specials["sep"]]]


def _albert_walk(layer, embeddings):
    """The same walk through ALBERT's own submodules: its attention returns after the first add & norm, and
    its feed-forward is ffn -> activation -> ffn_output, normalized with the residual by full_layer_layer_norm."""
    attn_output = layer.attention(embeddings)[0]
    intermediate = layer.activation(layer.ffn(attn_output))
    output = layer.full_layer_layer_norm(layer.ffn_output(intermediate) + attn_output)
    return None, attn_output, intermediate, output


def _distilbert_walk(layer, embeddings):
    """The walk through DistilBERT's submodules: its attention returns after out_lin (4.x takes query, key,
    value and a (B, T) mask), sa_layer_norm adds the residual, its FFN is lin1 -> activation -> lin2."""
    if "query" in inspect.signature(layer.attention.forward).parameters:  # 4.x MultiHeadSelfAttention
        attn_out = layer.attention(embeddings, embeddings, embeddings, torch.ones(embeddings.shape[:2]))[0]
    else:
        attn_out = layer.attention(embeddings)[0]
    attn_output = layer.sa_layer_norm(attn_out + embeddings)
    intermediate = layer.ffn.activation(layer.ffn.lin1(attn_output))
    output = layer.output_layer_norm(layer.ffn.lin2(intermediate) + attn_output)
    return None, attn_output, intermediate, output


def test_the_seed_notebook_walk_reproduces_the_first_hidden_state(bert):
    model = bert.model()
    inputs = bert.encode(Case((SENTENCE,)))
    T = inputs["input_ids"].shape[1]
    with torch.no_grad():
        states = model(**inputs, output_hidden_states=True).hidden_states
        embeddings = states[0]
        layer = layer_of(model, 0)
        # One unpadded sentence: attending to every token needs no mask.
        if bert.member.model_type == "albert":
            attn, attn_output, intermediate, output = _albert_walk(layer, embeddings)
        elif bert.member.model_type == "distilbert":
            attn, attn_output, intermediate, output = _distilbert_walk(layer, embeddings)
        else:
            attn = layer.attention.self(embeddings)[0]
            attn_output = layer.attention.output(attn, embeddings)
            intermediate = layer.intermediate(attn_output)
            output = layer.output(intermediate, attn_output)
        reference = bert.reference().layer(0, embeddings, inputs["attention_mask"])

    assert intermediate.shape == (1, T, bert.config.intermediate_size)  # [1, 7, 3072] for bert-base
    assert_close(output, states[1], "layer.output(...) vs hidden_states[1]")
    if attn is not None:  # ALBERT's and DistilBERT's attention give no z of their own
        assert_close(attn, reference[layer_name(0, "z")], "layer.attention.self vs reference z")
    assert_close(attn_output, reference[layer_name(0, "resid_mid")], "layer.attention.output vs reference resid_mid")
    assert_close(intermediate, reference[layer_name(0, "mlp_post")], "layer.intermediate vs reference mlp_post")
    assert_close(output, reference[layer_name(0, "resid_post")], "layer.output vs reference resid_post")
