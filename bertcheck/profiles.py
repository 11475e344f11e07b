"""Hypothesis profiles for bertcheck runs: pick one with --hypothesis-profile or BERTCHECK_PROFILE."""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

try:  # Hypothesis >= 6.120 loads its own "ci" profile when it sees a CI machine (CI, GITHUB_ACTIONS, ...)
    from hypothesis._settings import is_in_ci
except ImportError:  # older Hypothesis loads nothing by itself

    def is_in_ci() -> bool:
        return False


DEFAULT = "ci"
PROFILES = {
    # A quick look while editing: a handful of examples, fresh ones each run.
    "dev": dict(max_examples=10),
    # Every run draws the same examples, so CI, a laptop and a bug report agree; the default.
    "ci": dict(max_examples=25, derandomize=True, print_blob=True),
    # For gating a transformers upgrade: ten times the search, still reproducible.
    "thorough": dict(max_examples=250, derandomize=True, print_blob=True),
    # thorough's search spread over machines (--bert-split K/N): every item seeded by BERTCHECK_SEED and
    # its part, so parts and nights draw their own inputs, and with the example database (--bert-db),
    # which derandomized profiles cannot have: a counterexample found anywhere replays first.
    "fleet": dict(max_examples=250, derandomize=False, print_blob=True),
}
_COMMON = dict(
    deadline=None,  # one example is one or two model forwards: its time says nothing about correctness
    # too_slow: a 12-layer forward is slow by nature. data_too_large: 512-token texts are drawn on purpose.
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


def register_profiles() -> None:
    # Each from Hypothesis's own defaults, not from whatever is loaded now: register_profile inherits
    # from the loaded profile, and on a CI machine that is Hypothesis's "ci" (derandomized, no database),
    # which would have made "dev" derandomized there and nowhere else.
    base = settings.get_profile("default")
    for name, values in PROFILES.items():
        settings.register_profile(name, parent=base, **_COMMON, **values)


def current_profile() -> str:
    """The name of the loaded Hypothesis profile ("default" until one is loaded)."""
    name = getattr(settings, "get_current_profile_name", None)  # Hypothesis >= 6.86
    return name() if name is not None else settings._current_profile


def chosen_profile() -> str | None:
    """The profile someone loaded on purpose (a conftest, an outer pytest run in this process), or None
    where only Hypothesis's automatic choice is loaded: "default", or "ci" on a CI machine."""
    name = current_profile()
    automatic = name == "default" or (name == "ci" and is_in_ci())
    return None if automatic else name


def load_default_profile() -> str:
    """Load BERTCHECK_PROFILE (default `ci`) unless someone chose a profile; `--hypothesis-profile` still
    overrides it later. On a CI machine Hypothesis has loaded "ci" by itself: BERTCHECK_PROFILE wins."""
    name = os.environ.get("BERTCHECK_PROFILE", DEFAULT)
    if name not in PROFILES:
        raise ValueError(f"BERTCHECK_PROFILE={name!r} is not one of {', '.join(PROFILES)}")
    if chosen_profile() is None:
        settings.load_profile(name)
    return current_profile()
