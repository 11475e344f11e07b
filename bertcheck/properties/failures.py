"""The failure a property raises: what broke, where, by how much, on which input, and how to rerun it."""

from __future__ import annotations

import torch

from bertcheck.inputs.cases import Example
from bertcheck.spec.compare import differences
from bertcheck.spec.names import layer_name, where_of_name


class Unavailable(Exception):
    """The property does not apply here: this transformers lacks what it compares, or the model's config
    makes it false by design (a permutation of tokens under relative positions). Said in a visible
    skip or an exit 2, never a pass."""


class PropertyFailure(AssertionError):
    """A BERT property does not hold. `str()` is the full report a user reads.

    An AssertionError, so Hypothesis shrinks it and pytest reports it as a failed test.
    """

    def __init__(
        self,
        *,
        key: str,
        title: str,
        where: str,
        activation: str,
        expectation: str,
        details: list[str],
        case: Example | None = None,
        model_name: str | None = None,
        ids: list | None = None,
    ):
        self.key = key  # the property's key (`bertcheck check KEY`, `verify --property KEY`)
        self.title = title
        self.where = where
        self.activation = activation
        self.expectation = expectation
        self.details = details
        self.case = case
        self.model_name = model_name
        # The token ids the model was fed (B lists, padding included), where the input was text: a text
        # reproduces only through the same tokenizer, and a family member's random model reads BERT's
        # WordPiece renumbered (`bertcheck.subjects.tokenizers`), so the ids say what it saw.
        self.ids = ids
        super().__init__(self.report())

    @property
    def check(self) -> str:
        """The property's key: `key`'s name in bertcheck 0.1, kept until 0.2."""
        return self.key

    @property
    def spec(self) -> str:
        """The model's name: `model_name`'s name in bertcheck 0.1, kept until 0.2 ("spec" is the architecture now)."""
        return self.model_name

    def report(self) -> str:
        lines = [
            f"Property '{self.title}' failed at {self.where}, activation '{self.activation}'",
            f"  expected: {self.expectation}",
            *(f"  {line}" for line in self.details),
        ]
        if self.case is not None and self.model_name is not None:
            lines += ["Input:", *(f"  {line}" for line in self.case.describe(self.model_name))]
            if self.ids is not None:
                lines.append(f"  token ids: {self.ids}"[:2000])
            lines += ["Reproduce:", f"  {self.case.reproduce(self.model_name, self.key)}"]
        return "\n".join(lines)

    def example(self) -> dict | None:
        """The failing input as data: the property, the model and the example as `bertcheck verify
        --example` reads it. On the item's report (`bertcheck_shrunk`), so that a machine, the benchmark
        among them, can read what a failure shrank to."""
        if self.case is None:
            return None
        import json

        from bertcheck.inputs.cases import CandidateCase, example_json

        text = self.case.example_json() if isinstance(self.case, CandidateCase) else example_json(self.case)
        return {"property": self.key, "model": self.model_name, "example": json.loads(text)}

    def with_details(self, more: list[str]) -> "PropertyFailure":
        """The same failure with `more` lines after its details (a diagnosis)."""
        failure = self.again()
        failure.details = [*self.details, *more]
        failure.args = (failure.report(),)
        return failure

    def again(self) -> "PropertyFailure":
        """The same failure as a fresh exception: one object is never raised twice. The copy holds the
        numbers and the input alone: no traceback, so none of the frames that made it, whose locals are
        tensors, gradients and autograd graphs. Hypothesis keeps the exception of failing examples while
        it shrinks; kept with its frames, a bert-base gradients failure held ~1.4 GB per example. Raise
        the copy outside the ``except`` block that caught the original, or it keeps that as context."""
        return PropertyFailure(
            key=self.key,
            title=self.title,
            where=self.where,
            activation=self.activation,
            expectation=self.expectation,
            details=self.details,
            case=self.case,
            model_name=self.model_name,
            ids=self.ids,
        )


class ShrinkingStopped(BaseException):
    """Shrinking a failure went past its time budget (`ShrinkClock`): the smallest failure found so far is
    the report. A BaseException, so that Hypothesis neither shrinks nor replays it (it does both with
    every Exception); pytest reports it as a failed test, with this text."""

    def __init__(self, failure: PropertyFailure, seconds: float, profile: str):
        self.failure = failure
        super().__init__(
            f"{failure.report()}\n(shrinking stopped at its time budget of {seconds:g} s under the {profile} "
            "profile: this is the smallest input found so far; BERTCHECK_SHRINK_SECONDS sets the budget)"
        )


# Seconds a property item may spend shrinking a failure, from its first failing example, per profile:
# a failing `ci` run must report within the time a passing one takes (its slowest bert-base item is
# ~13 s); thorough and fleet search ten times as long and may shrink as long. BERTCHECK_SHRINK_SECONDS
# overrides them all.
SHRINK_SECONDS = {"dev": 30.0, "ci": 60.0, "thorough": 600.0, "fleet": 600.0}


class ShrinkClock:
    """The time one test item has spent since its first failing example. Armed by the pytest plugin
    around each of bertcheck's items; unarmed (the CLI, the API, tests calling a property directly) it
    never stops anything."""

    def __init__(self):
        self.armed = False
        self.first: float | None = None
        self.smallest: PropertyFailure | None = None

    def arm(self) -> None:
        self.armed, self.first, self.smallest = True, None, None

    def disarm(self) -> None:
        self.armed, self.first, self.smallest = False, None, None

    def failed(self, failure: PropertyFailure) -> None:
        """An example failed: Hypothesis shrinks towards smaller inputs, so the latest is the smallest."""
        if self.armed:
            import time

            self.first = self.first or time.monotonic()
            self.smallest = failure

    def check(self) -> None:
        """Before an example: raise `ShrinkingStopped` if this item is past its budget."""
        if not self.armed or self.first is None:
            return
        import os
        import time

        from bertcheck.inputs.profiles import current_profile

        profile = current_profile()
        budget = float(os.environ.get("BERTCHECK_SHRINK_SECONDS") or SHRINK_SECONDS.get(profile, 60.0))
        if time.monotonic() - self.first > budget:
            raise ShrinkingStopped(self.smallest.again(), budget, profile)


SHRINKING = ShrinkClock()


class Judge:
    """Judges one property on one example: compares what it is given and builds the failure, which names
    the property (key and title), the example and the model's name; it holds the real tokens compared
    and, for a property that reads a hooked forward, its activations."""

    def __init__(self, key: str, title: str, case: Example, model_name: str, real: torch.Tensor, acts=None, ids=None):
        self.key, self.title, self.case, self.model_name, self.real, self.acts = (
            key,
            title,
            case,
            model_name,
            real,
            acts,
        )
        # (B, T) input ids the example was encoded to, named in a failure (`PropertyFailure.ids`)
        self.ids = None if ids is None else ids.tolist()

    def fail(self, where: str | None, activation: str, expectation: str, details: list[str]) -> PropertyFailure:
        """The failure at `activation`; `where` None: the layer its name says (`names.where_of_name`)."""
        return PropertyFailure(
            key=self.key,
            title=self.title,
            where=where or where_of_name(activation),
            activation=activation,
            expectation=expectation,
            details=details,
            case=self.case,
            model_name=self.model_name,
            ids=self.ids,
        )

    def get(self, where: str, name: str) -> torch.Tensor:
        """A captured activation, or a failure saying its module did not run exactly once."""
        __tracebackhide__ = True
        acts = self.acts
        if name in acts.missing:
            raise self.fail(
                where,
                name,
                f"module {acts.missing[name]} runs once per forward",
                ["it never ran: the forward skipped or replaced it"],
            )
        if name in acts.repeated:
            raise self.fail(
                where,
                name,
                "each module runs once per forward",
                [f"its module ran {acts.repeated[name]} times in one forward"],
            )
        return acts[name]

    def same(self, name: str, actual, expected, tolerance, expectation: str, *, tokens=True) -> float:
        """`close` at the place the full name `name` says (``blocks.3.z``: layer 3)."""
        __tracebackhide__ = True
        return self.close(None, name, actual, expected, tolerance, expectation, tokens=tokens)

    def close(self, where, name, actual, expected, tolerance, expectation, *, tokens=True) -> float:
        """Compare; raise naming `name` at `where` (None: where its name says) if outside `tolerance`.
        `tokens`: True compares the example's real tokens, a (B, T) bool tensor those tokens, False every
        element (parameters have no tokens)."""
        __tracebackhide__ = True
        if actual.shape != expected.shape:
            raise self.fail(
                where, name, expectation, [f"shape {tuple(actual.shape)}, expected {tuple(expected.shape)}"]
            )
        real = self.real if tokens is True else (None if tokens is False else tokens)
        if real is not None and actual.dim() == 2:  # one output per row (the pooler's): no token axis
            real = None
        mismatch, ratio = differences(actual, expected, tolerance, real)
        if mismatch is not None:
            raise self.fail(where, name, expectation, mismatch.lines())
        return ratio


def where_of(layer: int | None) -> str:
    return "embeddings" if layer is None else f"layer {layer}"


def full_name(layer: int | None, name: str) -> str:
    """The full activation name: embedding names stand alone, layer names get ``blocks.{i}.``."""
    return name if layer is None else layer_name(layer, name)
