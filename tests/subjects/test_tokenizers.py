"""BERT's WordPiece, renumbered to a RoBERTa-family member's special tokens, for its random models."""

from transformers import BertTokenizerFast

from bertcheck.spec.family import member
from bertcheck.subjects.models import _minilm_dir
from bertcheck.subjects.tokenizers import Renumbered


def _roberta():
    return Renumbered(BertTokenizerFast.from_pretrained(str(_minilm_dir()), local_files_only=True), member("roberta"))


def test_the_special_tokens_take_roberta_numbers_and_the_words_keep_theirs():
    encoded = _roberta()(["hello world", "a"], padding=True, return_tensors="pt")
    assert encoded["input_ids"].tolist() == [[0, 7592, 2088, 2], [0, 1037, 2, 1]]  # <s> ... </s> <pad>
    assert encoded["attention_mask"].tolist() == [[1, 1, 1, 1], [1, 1, 1, 0]]


def test_no_wordpiece_bracket_token_survives_under_its_own_number():
    tokenizer = _roberta()
    ids = tokenizer(["[unused5] [MASK] [UNK]"], return_tensors="pt")["input_ids"][0].tolist()
    assert ids[0] == 0 and ids[-1] == 2
    assert all(i == 3 or i >= 999 for i in ids[1:-1])  # <unk>, or an ordinary word piece


def test_tokens_are_named_in_the_member_s_words():
    assert _roberta().convert_ids_to_tokens([0, 7592, 2, 1, 3]) == ["<s>", "hello", "</s>", "<pad>", "<unk>"]
