"""The failure a property raises: what broke, where, by how much, on which input, and how to rerun it."""

from __future__ import annotations

from bertcheck.cases import Case


class PropertyFailure(AssertionError):
    """A BERT property does not hold. `str()` is the full report a user reads.

    An AssertionError, so Hypothesis shrinks it and pytest reports it as a failed test.
    """

    def __init__(self, *, check: str, title: str, where: str, activation: str, expectation: str,
                 details: list[str], case: Case | None = None, model: str | None = None):  # fmt: skip
        self.check = check
        self.title = title
        self.where = where
        self.activation = activation
        self.expectation = expectation
        self.details = details
        self.case = case
        self.model = model
        super().__init__(self.report())

    def report(self) -> str:
        lines = [
            f"Property '{self.title}' failed at {self.where}, activation '{self.activation}'",
            f"  expected: {self.expectation}",
            *(f"  {line}" for line in self.details),
        ]
        if self.case is not None and self.model is not None:
            lines += ["Input:", *(f"  {line}" for line in self.case.describe(self.model))]
            lines += ["Reproduce:", f"  {self.case.reproduce(self.model, self.check)}"]
        return "\n".join(lines)

    def with_input(self, case: Case, model: str) -> "PropertyFailure":
        """The same failure, now naming the input that produced it."""
        return PropertyFailure(check=self.check, title=self.title, where=self.where, activation=self.activation,
                               expectation=self.expectation, details=self.details, case=case, model=model)  # fmt: skip
