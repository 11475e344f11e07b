import pytest
import torch
from hypothesis import Phase, find, given, settings
from hypothesis.errors import InvalidArgument

from bertcheck.inputs.cases import Case
from bertcheck.inputs.strategies import cases, devices, dtypes, long_sentences, sentence_pairs, sentences


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda: sentences(min_words=-1), "min_words=-1 must be between 0 and 512"),
        (lambda: sentences(min_words=5, max_words=2), "min_words=5 is greater than max_words=2"),
        (lambda: sentences(max_words=2.5), "max_words=2.5 must be an int"),
        (lambda: sentence_pairs(max_words=True), "max_words=True must be an int"),
        (lambda: long_sentences(min_words=0), "min_words=0 must be between 1 and 4096"),
        (lambda: dtypes(allowed=()), "allowed=() must name at least one dtype"),
        (lambda: dtypes(allowed=(torch.int8,)), "allowed contains torch.int8, which has no row in the tolerance table"),
        (lambda: devices(allowed=[]), "allowed=[] must name at least one device"),
        (lambda: devices(allowed=["tpu"]), "allowed contains 'tpu', which this machine does not have"),
        (lambda: cases(min_batch=0), "min_batch=0 must be between 1 and 64"),
        (lambda: cases(min_batch=4, max_batch=2), "min_batch=4 is greater than max_batch=2"),
        (lambda: cases(dtypes=torch.float32), "dtypes=torch.float32 must be a strategy"),
    ],
)
def test_bad_arguments_are_refused_naming_the_argument_and_its_value(make, message):
    with pytest.raises(InvalidArgument) as caught:
        make()
    assert message in str(caught.value)


# Reaching a kind of input is the question, not its smallest form: shrinking a 520-word text alone
# took minutes.
REACH = settings(max_examples=2000, database=None, phases=[Phase.generate])


@pytest.mark.parametrize(
    "strategy, condition",
    [
        (sentences(), lambda s: s == ""),
        (sentences(), lambda s: any(ord(c) > 0x3000 for c in s)),
        (sentences(), lambda s: any(c in "\x00\x07\u200b" for c in s)),
        (sentences(), lambda s: "\n" in s or "  " in s),
        (sentences(long=True), lambda s: len(s.split()) >= 520),
        (cases(), lambda c: c.pairs and c.batch >= 2),
        (cases(), lambda c: c.batch == 8),
        (cases(), lambda c: c.dtype == torch.float64),
        (cases(), lambda c: len(c.texts[0]) > 2000),
    ],
    ids=[
        "empty",
        "CJK or emoji",
        "control or zero-width",
        "whitespace runs",
        "past 512 tokens",
        "pair batches",
        "batch of 8",
        "float64",
        "long input",
    ],
)
def test_generation_reaches_every_kind_of_input_the_spec_needs(strategy, condition):
    find(strategy, condition, settings=REACH)


def test_cases_shrink_to_the_smallest_batch_of_empty_sentences():
    found = find(cases(long=False), lambda c: c.batch >= 3, settings=settings(database=None))
    assert found == Case(("", "", ""), dtype=torch.float32, device="cpu")


@given(cases(long=True))
@settings(max_examples=50, database=None)
def test_a_long_input_always_comes_alone(case):
    if any(len(t) > 1000 for t in case.texts if isinstance(t, str)):
        assert case.batch == 1


@pytest.mark.parametrize(
    "texts, message",
    [
        ((), "at least one text"),
        (("a", ("b", "c")), "either sentences or sentence pairs"),
        ((("a", "b", "c"),), "a sentence pair is two strings"),
        ((3,), "a text is a str or a pair of str"),
    ],
)
def test_a_case_refuses_malformed_texts(texts, message):
    with pytest.raises(ValueError, match=message):
        Case(texts)


def test_every_sentence_the_tokenizer_reduces_to_nothing_still_encodes_as_cls_sep(tiny):
    encoded = tiny.encode(Case(("", "\x00\u200b", " \t\n")))
    assert encoded["input_ids"].tolist() == [[101, 102]] * 3
