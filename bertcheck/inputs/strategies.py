"""Hypothesis strategies for BERT inputs: sentences, sentence pairs, batches, dtypes, devices, cases.

Plural nouns, keyword-only arguments, paired bounds; each validates its arguments first and raises
`hypothesis.errors.InvalidArgument` naming the argument and its value.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Protocol

import torch
from hypothesis import assume
from hypothesis import strategies as st
from hypothesis.errors import InvalidArgument

from bertcheck.inputs import coverage
from bertcheck.inputs.capabilities import EVERYTHING, Runs
from bertcheck.inputs.cases import ATTENTION_SCALES, Case, LayerCase
from bertcheck.inputs.devices import available_devices

# Words the WordPiece vocab knows whole, so short ASCII sentences are mostly real tokens.
_WORDS = (
    "the a this is test sentence of and to in it was for on with as by at from be are not but what all were "
    "when we there can an your which their said if do will each about how up out them then she many some so "
    "these would other into has more her two like him see time could no make than first been its who now "
    "people my made over did down only way find use may water long little very after words called just where "
    "most know get through back much before go good new write our used me man too any day same right look think "
    "bank river money running unaffable tokenization transformers embedding"
).split()
_PUNCTUATION = list(".,;:!?'\"()[]{}-–—…/\\@#$%^&*_+=<>|~`")
# Accents, CJK (tokenized one character at a time), emoji, and characters the BERT normalizer strips or
# treats as whitespace: controls, zero-width and non-breaking spaces, combining marks.
_UNICODE = (
    list("éèêëàçñöüßøåæœ")
    + list("日本語中文字한국어")
    + list("😀🤖🎉👍🏽")
    + [
        "\x00",
        "\x07",
        "\t",
        "\n",
        "\r",
        "\u200b",
        "\u00a0",
        "\u3000",
        "\u0301",
        "\ufeff",
    ]
)


def _validate_int(name: str, value: int, *, lower: int, upper: int) -> None:
    if not isinstance(value, int) or isinstance(value, bool):
        raise InvalidArgument(f"{name}={value!r} must be an int")
    if not lower <= value <= upper:
        raise InvalidArgument(f"{name}={value!r} must be between {lower} and {upper}")


def _validate_sizes(name_min: str, min_value: int, name_max: str, max_value: int, *, lower: int, upper: int) -> None:
    _validate_int(name_min, min_value, lower=lower, upper=upper)
    _validate_int(name_max, max_value, lower=lower, upper=upper)
    if min_value > max_value:
        raise InvalidArgument(f"{name_min}={min_value!r} is greater than {name_max}={max_value!r}")


def sentences(
    *, min_words: int = 0, max_words: int = 24, unicode: bool = True, long: bool = False
) -> st.SearchStrategy[str]:
    """Return a strategy for sentences.

    - min_words, max_words (0, 24): bounds on the number of words (and other pieces) joined.
    - unicode (True): also draw accents, CJK, emoji, control characters, whitespace runs and arbitrary
      text; False keeps to ASCII words and punctuation.
    - long (False): also, rarely, draw texts of 520-700 words, past BERT's 512-token limit, so
      truncation and positions up to 511 are exercised.

    The empty string, and texts the tokenizer reduces to nothing, are included: they encode as
    ``[CLS] [SEP]``.
    """
    _validate_sizes("min_words", min_words, "max_words", max_words, lower=0, upper=512)
    pieces = st.sampled_from(_WORDS) | st.sampled_from(_PUNCTUATION)
    separators = st.sampled_from([" ", " ", " ", "", "  "])
    if unicode:
        pieces = pieces | st.sampled_from(_UNICODE) | st.text(max_size=6)
        separators = separators | st.sampled_from(["\t", "\n", "   ", "\u00a0"])
    short = st.lists(st.tuples(pieces, separators), min_size=min_words, max_size=max_words).map(
        lambda parts: "".join(p + s for p, s in parts).strip(" ")
    )
    if not long:
        return short
    # one_of picks a branch uniformly: nine short branches to one long keeps long texts to ~10%.
    return st.one_of(*([short] * 9), long_sentences())


def long_sentences(*, min_words: int = 520, max_words: int = 700) -> st.SearchStrategy[str]:
    """Return a strategy for texts past BERT's 512-token limit, which the tokenizer truncates.

    - min_words, max_words (520, 700): every word here is one WordPiece token, so 520 words make 522
      tokens with [CLS] and [SEP], and truncation to 512 always happens.
    """
    _validate_sizes("min_words", min_words, "max_words", max_words, lower=1, upper=4096)
    # A length and up to 32 words, repeated to that length: a failure shrinks in a few dozen steps (the
    # length halves, the words go), where 520-700 words drawn one by one took each a step of its own, each
    # a 512-token forward: a failing shard spent its whole shrinking budget and still reported 600 words.
    return st.builds(
        lambda n, words: " ".join((words * (n // len(words) + 1))[:n]),
        st.integers(min_words, max_words),
        st.lists(st.sampled_from(_WORDS), min_size=1, max_size=32),
    )


def sentence_pairs(
    *, min_words: int = 0, max_words: int = 12, unicode: bool = True
) -> st.SearchStrategy[tuple[str, str]]:
    """Return a strategy for (first, second) sentence pairs, encoded with token types 0 and 1.

    - min_words, max_words (0, 12): bounds for each of the two sentences.
    - unicode (True): as for `sentences`.
    """
    one = sentences(min_words=min_words, max_words=max_words, unicode=unicode)
    return st.tuples(one, one)


def dtypes(*, allowed=(torch.float32, torch.float64)) -> st.SearchStrategy[torch.dtype]:
    """Return a strategy for model dtypes.

    - allowed (float32, float64): the dtypes to draw from; each must have a row in the tolerance table,
      or be float16 or bfloat16, which candidates are judged in by `bertcheck.spec.low_precision`.

    Inside a test item the pytest plugin sharded, every example draws the shard's dtype
    (`bertcheck.inputs.shards.Shard.pick`): a worker holds one dtype's copy of the model per item.
    """
    from bertcheck.spec.low_precision import HALF
    from bertcheck.spec.tolerances import TOLERANCES

    allowed = tuple(allowed)
    if not allowed:
        raise InvalidArgument("allowed=() must name at least one dtype")
    for dtype in allowed:
        if dtype not in TOLERANCES and dtype not in HALF:
            raise InvalidArgument(f"allowed contains {dtype!r}, which has no row in the tolerance table")
    return _dtype_of_shard(allowed)


@st.composite
def _dtype_of_shard(draw, allowed: tuple) -> torch.dtype:
    """Inside a sharded test item (`bertcheck.inputs.shards`) the shard's one dtype; elsewhere any of `allowed`."""
    from bertcheck.inputs.shards import current

    shard = current()
    return shard.pick(allowed) if shard is not None else draw(st.sampled_from(allowed))


def devices(*, allowed=None) -> st.SearchStrategy[str]:
    """Return a strategy for devices.

    - allowed (None): device names to draw from; None means every device present (`available_devices`).
      A device named here that this machine lacks is an error, never a silent skip.
    """
    present = available_devices()
    allowed = present if allowed is None else list(allowed)
    if not allowed:
        raise InvalidArgument("allowed=[] must name at least one device")
    for device in allowed:
        if device not in present:
            raise InvalidArgument(f"allowed contains {device!r}, which this machine does not have (it has {present})")
    return st.sampled_from(allowed)


# (kind, batch size) -> cases drawn in this process: the benchmark reports the input distribution.
DRAWN: dict[tuple[str, int], int] = {}
# A digest of each distinct input drawn in this process: the benchmark counts how many distinct inputs
# the parts of a split explore together (`bertcheck.tools.bench.split_suites`).
DISTINCT: set[str] = set()


def _drawn(case):
    import hashlib

    DISTINCT.add(hashlib.sha1(repr(case).encode()).hexdigest()[:16])
    return case


_TEXT_KINDS = {"sentences": "sentences", "pairs": "pairs", "past the limit": "long"}


def _case_allowed(row: dict) -> bool:
    """A text past the limit comes alone: batch 1 keeps the example's cost at one 512-token forward."""
    return not (row.get("text") == "past the limit" and row.get("batch") not in (None, "1"))


@st.composite
def _cases(draw, min_batch, max_batch, dtypes_, devices_, unicode, long, pairs):
    device = draw(devices_)
    dtype = draw(dtypes_)
    texts_ = ("sentences",) + (("pairs",) if pairs else ()) + (("past the limit",) if long else ())
    classes = {"text": texts_, "batch": coverage.batches(min_batch, max_batch)}
    row = coverage.forced_row(classes, _case_allowed)
    if row is not None:  # a row of the covering design (`bertcheck.inputs.coverage`): inside its classes, at random
        assume(draw(st.integers(0, 15)) != 0)  # not the simplest input of the classes, which sits on their edge
        kind = _TEXT_KINDS[row["text"]]
        low, high = coverage.batch_bounds(row["batch"], min_batch, max_batch)
    else:
        choices = ["sentences"] * 5 + (["pairs"] * 4 if pairs else []) + (["long"] if long else [])
        kind, (low, high) = draw(st.sampled_from(choices)), (min_batch, max_batch)
    if kind == "long":  # alone: batch 1 keeps the example's cost at one 512-token forward
        case = Case((draw(long_sentences()),), dtype=dtype, device=device)
    else:
        texts = sentence_pairs(unicode=unicode) if kind == "pairs" else sentences(unicode=unicode)
        case = Case(tuple(draw(st.lists(texts, min_size=low, max_size=high))), dtype=dtype, device=device)
    DRAWN[kind, case.batch] = DRAWN.get((kind, case.batch), 0) + 1
    text = {"long": "past the limit"}.get(kind, kind)
    coverage.drawn(case, {"text": text, "batch": coverage.batch_class(case.batch)}, classes)
    return _drawn(case)


def cases(
    *,
    min_batch: int = 1,
    max_batch: int = 8,
    dtypes=None,
    devices=None,
    unicode: bool = True,
    long: bool = True,
    pairs: bool = True,
) -> st.SearchStrategy[Case]:
    """Return a strategy for whole examples: a padded batch of sentences or of pairs, a dtype, a device.

    - min_batch, max_batch (1, 8): batch size bounds; batches mix lengths, so all but the longest
      sentence are padded.
    - dtypes (None): a strategy for dtypes; None means `dtypes()`.
    - devices (None): a strategy for devices; None means `devices()`.
    - unicode (True): as for `sentences`.
    - long (True): one example in ten is a single text past 512 tokens (`long_sentences`), alone.
    - pairs (True): four batches in ten are sentence pairs (token types 0 and 1); False for a model
      with one token type (`type_vocab_size=1`).
    """
    _validate_sizes("min_batch", min_batch, "max_batch", max_batch, lower=1, upper=64)
    for name, value in (("dtypes", dtypes), ("devices", devices)):
        if value is not None and not isinstance(value, st.SearchStrategy):
            raise InvalidArgument(f"{name}={value!r} must be a strategy, such as bertcheck.inputs.strategies.{name}()")
    dtypes = _all_dtypes() if dtypes is None else dtypes
    devices = _all_devices() if devices is None else devices
    return _cases(min_batch, max_batch, dtypes, devices, unicode, long, pairs)


_all_dtypes, _all_devices = dtypes, devices  # the defaults of `cases`, whose arguments shadow these names


def layer_cases(
    *,
    n_layers: int,
    min_tokens: int = 1,
    max_tokens: int = 16,
    max_batch: int = 3,
    scales=("unit", "low", "large"),
    dtypes=None,
    devices=None,
    long: bool = False,
    max_long_tokens: int = 512,
):
    """Return a strategy for generated hidden states fed to one layer (`bertcheck.inputs.cases.LayerCase`).

    - n_layers: the model's num_hidden_layers; the layer is drawn from them.
    - min_tokens, max_tokens (1, 16): sequence length bounds.
    - max_batch (3): rows 1 and up may be padded at the end.
    - scales ("unit", "low", "large"): standard deviations 1, 1e-3 (variance 1e-6, where eps matters
      even in float32) and 100.
    - dtypes, devices (None): strategies; None means `dtypes()` and `devices()`.
    - long (False): the lengths past `max_tokens` too: three examples in ten are medium (`max_tokens` + 1
      to 127 tokens, any batch) and one in ten long (a batch of 2 with 128 to `max_long_tokens` tokens).
    - max_long_tokens (512): the longest input the model takes (`Bert.max_length`: min(512,
      max_position_embeddings)); long examples draw up to it, from at most 128 below it.
    """
    from bertcheck.inputs.cases import SCALES, LayerCase

    _validate_sizes("min_tokens", min_tokens, "max_tokens", max_tokens, lower=1, upper=512)
    _validate_int("n_layers", n_layers, lower=1, upper=1024)
    _validate_int("max_batch", max_batch, lower=1, upper=64)
    _validate_int("max_long_tokens", max_long_tokens, lower=max_tokens, upper=512)
    for scale in scales:
        if scale not in SCALES:
            raise InvalidArgument(f"scales contains {scale!r}; known: {', '.join(SCALES)}")

    dtype_strategy = _all_dtypes() if dtypes is None else dtypes
    device_strategy = _all_devices() if devices is None else devices

    medium = (max_tokens + 1, min(127, max_long_tokens))  # empty where max_tokens is 127 or more
    # The length classes (`bertcheck.inputs.coverage`) this strategy can draw, each with its bounds in tokens.
    bounds = {"short": (min_tokens, min(max_tokens, max_long_tokens - 1) if long else max_tokens)}
    if long:
        bounds.update(medium=medium, long=(128, max_long_tokens - 1), max=(max_long_tokens, max_long_tokens))
    bounds = {name: (lo, hi) for name, (lo, hi) in bounds.items() if lo <= hi}
    classes = {
        "length": tuple(bounds),
        "batch": coverage.batches(1, max_batch),
        "padding": tuple(
            c
            for c in coverage.PADDINGS
            if c == "none" or (max_batch >= 2 and (c == "full" or max(hi for _, hi in bounds.values()) >= 2))
        ),
        "scale": tuple(scales),
    }

    def length_of(tokens: int) -> str:
        return next(name for name, (lo, hi) in reversed(bounds.items()) if lo <= tokens <= hi)

    def drawn_at_random(draw) -> LayerCase:
        # Shrinks towards short: 0-5 short, 6-8 medium, 9 long.
        length = draw(st.integers(0, 9)) if long else 0
        is_long = length == 9
        if is_long:
            tokens = draw(st.integers(min(128, max_long_tokens), max_long_tokens))
        elif length >= 6 and medium[0] <= medium[1]:
            tokens = draw(st.integers(*medium))
        else:
            tokens = draw(st.integers(min_tokens, max_tokens))
        return LayerCase(
            layer=draw(st.integers(0, n_layers - 1)),
            batch=2 if is_long else draw(st.integers(1, max_batch)),
            tokens=tokens,
            pad=draw(st.integers(0, tokens - 1)),
            scale=draw(st.sampled_from(scales)),
            seed=draw(st.integers(0, 2**31 - 1)),
            dtype=draw(dtype_strategy),
            device=draw(device_strategy),
        )

    def drawn_in(draw, row: dict) -> LayerCase:
        """A row of the covering design (`bertcheck.inputs.coverage`): inside its classes, at random."""
        assume(draw(st.integers(0, 15)) != 0)  # not the simplest input of the classes, which sits on their edge
        padded = row["padding"] == "some"
        low, high = bounds[row["length"]]
        tokens = draw(st.integers(max(low, 2) if padded else low, high))
        pad = {"none": 0, "full": tokens}.get(row["padding"]) if not padded else draw(st.integers(1, tokens - 1))
        return LayerCase(
            layer=draw(st.integers(0, n_layers - 1)),
            batch=draw(st.integers(*coverage.batch_bounds(row["batch"], 1, max_batch))),
            tokens=tokens,
            pad=pad,
            scale=row["scale"],
            seed=draw(st.integers(0, 2**31 - 1)),
            dtype=draw(dtype_strategy),
            device=draw(device_strategy),
        )

    @st.composite
    def draw_case(draw):
        row = coverage.forced_row(classes, _layer_allowed)
        case = drawn_at_random(draw) if row is None else drawn_in(draw, row)
        padding = "none" if case.batch == 1 or case.pad == 0 else "full" if case.pad == case.tokens else "some"
        drew = {"length": length_of(case.tokens), "batch": coverage.batch_class(case.batch), "padding": padding}
        coverage.drawn(case, {**drew, "scale": case.scale}, classes)
        return _drawn(case)

    return draw_case()


def _layer_allowed(row: dict) -> bool:
    """Padding, some or full, needs a second row (rows 1+ are the padded ones); a long input comes in a batch of at most
    3, so that a 512-token example stays one layer's forward of a few rows."""
    if row.get("batch") == "1" and row.get("padding") in ("some", "full"):
        return False
    return not (row.get("length") in ("long", "max") and row.get("batch") == "4-8")


# ---- what a candidate is fed (`bertcheck verify`, `check_layer`, `check_model`, the plugin) ----------


class Shaped(Protocol):
    """What a candidate's strategy reads of the model it is checked against (`bertcheck.subjects.subject.Bert`)."""

    config: object  # its num_hidden_layers
    max_length: int  # the longest input it takes
    takes_pairs: bool  # whether it has a second token type


DEFAULT_DTYPES = (torch.float32, torch.float64)
# The largest batch a layer candidate is fed: model candidates get batches up to 8 (`strategies.cases`),
# and a layer that is wrong only at some batch in 4-8 must meet one.
LAYER_MAX_BATCH = 8
MODEL_MAX_BATCH = 8  # the largest batch of texts `cases` draws for a model candidate


def layer_strategy(
    bert: Shaped, allowed: Iterable[torch.dtype], device: str = "cpu", runs: Runs = EVERYTHING
) -> st.SearchStrategy[LayerCase]:
    """Generated states for a layer candidate: padded batches of 1 to 8, 1 to 127 tokens, and 1 in 10 of
    128-512 tokens; std 1 and 1e-3; in the dtypes `allowed`, within what the candidate `runs` (its batch
    and length limits)."""
    longest = min(bert.max_length, runs.max_tokens or bert.max_length)
    return layer_cases(
        n_layers=bert.config.num_hidden_layers,
        scales=ATTENTION_SCALES,
        max_batch=min(LAYER_MAX_BATCH, runs.max_batch or LAYER_MAX_BATCH),
        max_tokens=min(16, longest),
        long=longest > 16,
        max_long_tokens=longest,
        dtypes=dtypes(allowed=allowed),
        devices=st.just(device),
    )


def model_strategy(
    bert: Shaped, allowed: Iterable[torch.dtype], device: str = "cpu", runs: Runs = EVERYTHING
) -> st.SearchStrategy[Case]:
    """Generated sentences for a model candidate: padded batches, pairs (where the model has two token
    types), 1 in 10 past 512 tokens; in the dtypes `allowed`, within what the candidate `runs` (texts past
    the limit only where it takes the model's longest input; a batch longer than it takes is never run:
    `outside`)."""
    return cases(
        dtypes=dtypes(allowed=allowed),
        devices=st.just(device),
        pairs=bert.takes_pairs,
        max_batch=min(MODEL_MAX_BATCH, runs.max_batch or MODEL_MAX_BATCH),
        long=runs.max_tokens is None or runs.max_tokens >= bert.max_length,
    )


def never_drawn(runs: Runs, kind: str) -> list[str]:
    """What the strategies above never draw for a candidate of `kind` ("layer" or "model") that declares
    it `runs` less than everything, under the plugin's defaults (`properties/test_candidate.py`: the
    default dtypes on cpu, up to BERT's 512 tokens), each with why. Empty: nothing left out."""
    return runs.left_out(DEFAULT_DTYPES, "cpu", 512, MODEL_MAX_BATCH if kind == "model" else LAYER_MAX_BATCH)
