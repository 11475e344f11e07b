"""Hypothesis profiles for bertcheck runs: pick one with --hypothesis-profile or BERTCHECK_PROFILE."""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

DEFAULT = "ci"
PROFILES = {
    # A quick look while editing: a handful of examples, fresh ones each run.
    "dev": dict(max_examples=10),
    # Every run draws the same examples, so CI, a laptop and a bug report agree; the default.
    "ci": dict(max_examples=25, derandomize=True, print_blob=True),
    # For gating a transformers upgrade: ten times the search, still reproducible.
    "thorough": dict(max_examples=250, derandomize=True, print_blob=True),
}
_COMMON = dict(
    deadline=None,  # one example is one or two model forwards: its time says nothing about correctness
    # too_slow: a 12-layer forward is slow by nature. data_too_large: 512-token texts are drawn on purpose.
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


def register_profiles() -> None:
    for name, values in PROFILES.items():
        settings.register_profile(name, **_COMMON, **values)


def current_profile() -> str:
    """The name of the loaded Hypothesis profile ("default" until one is loaded)."""
    name = getattr(settings, "get_current_profile_name", None)  # Hypothesis >= 6.86
    return name() if name is not None else settings._current_profile


def load_default_profile() -> str:
    """Load BERTCHECK_PROFILE (default `ci`) where no profile is loaded yet; `--hypothesis-profile` still
    overrides it later. A profile someone already loaded (an outer pytest run in the same process, a
    conftest) is kept."""
    name = os.environ.get("BERTCHECK_PROFILE", DEFAULT)
    if name not in PROFILES:
        raise ValueError(f"BERTCHECK_PROFILE={name!r} is not one of {', '.join(PROFILES)}")
    if current_profile() == "default":
        settings.load_profile(name)
    return current_profile()
