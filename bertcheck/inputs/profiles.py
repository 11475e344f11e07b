"""Hypothesis profiles for bertcheck's properties: pick one with --hypothesis-profile or BERTCHECK_PROFILE.

They apply to bertcheck's items alone (a test that takes the ``bert`` fixture), never to the rest of a
project: the plugin never loads a profile, it hands each of its items the settings `for_test` makes.
A project's own ``@given`` tests run exactly as they would without bertcheck installed.
"""

from __future__ import annotations

import os

from hypothesis import HealthCheck, Phase, settings
from hypothesis.errors import InvalidArgument

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
    # Every phase but "explain": it replays the shrunk failure with each part of the input varied, to
    # say which parts matter. The failure report names the shrunk input and a command that reruns it;
    # explain cost 21 s of a 22 s failing item on random:tiny (0.7 s without it).
    phases=[Phase.explicit, Phase.reuse, Phase.generate, Phase.target, Phase.shrink],
)
# The settings a test's own @settings(...) can name: those it sets override the profile's.
_FIELDS = (
    "max_examples",
    "derandomize",
    "database",
    "verbosity",
    "phases",
    "report_multiple_bugs",
    "suppress_health_check",
    "deadline",
    "print_blob",
)

_OURS: dict[str, settings] = {}  # bertcheck's profiles, whatever a project registers under the same names
_active = DEFAULT  # the profile bertcheck's items run under in this process (`choose`)


def register_profiles() -> None:
    """Make bertcheck's profiles, each from Hypothesis's own defaults (not from whatever is loaded: on a
    CI machine that is Hypothesis's "ci", derandomized and with no database). A name Hypothesis or the
    project has not registered is registered too, so ``--hypothesis-profile thorough`` is known in any
    project; a name already taken (Hypothesis's own "ci") is left to its owner."""
    base = settings.get_profile("default")
    for name, values in PROFILES.items():
        _OURS[name] = settings(base, **_COMMON, **values)
        try:
            settings.get_profile(name)
        except InvalidArgument:
            settings.register_profile(name, _OURS[name])


def choose(named: str | None) -> str:
    """The profile of this run's bertcheck items: `named` (--hypothesis-profile, which may be the
    project's own), else BERTCHECK_PROFILE, else ci. ValueError for an unknown BERTCHECK_PROFILE."""
    global _active
    name = named or os.environ.get("BERTCHECK_PROFILE", DEFAULT)
    if not named and name not in PROFILES:
        raise ValueError(f"BERTCHECK_PROFILE={name!r} is not one of {', '.join(PROFILES)}")
    _active = name
    return name


def current_profile() -> str:
    """The name of the profile bertcheck's items run under."""
    return _active


def profile_settings(name: str | None = None) -> settings:
    """The settings of profile `name` (default: the current one): bertcheck's own where it has one."""
    name = name or _active
    return _OURS[name] if name in _OURS else settings.get_profile(name)


def for_test(own: settings) -> settings:
    """The settings one of bertcheck's items runs under: the current profile, with whatever the test set
    itself in ``@settings(...)``. A test without one carries the profile loaded when it was decorated;
    nothing of that is kept."""
    profile = profile_settings()
    return settings(profile, **_explicit(own)) if own is not None else profile


def own_settings(test) -> settings | None:
    """The settings `test` was decorated with (None: not a Hypothesis test), kept aside the first time:
    the plugin replaces them with each item's (``bertcheck_shard``), and a module imported once serves
    several runs."""
    if test is None or not hasattr(test, "_hypothesis_internal_use_settings"):
        return None
    return test.__dict__.setdefault("_bertcheck_own_settings", test._hypothesis_internal_use_settings)


def examples_of(item) -> int | None:
    """How many examples a pytest item runs: its shard's share of its property's (`bertcheck.inputs.shards`);
    None for a test that is not one of bertcheck's properties."""
    own = own_settings(getattr(item, "obj", None))
    if own is None or "bert" not in getattr(item, "fixturenames", ()):
        return None
    max_examples = for_test(own).max_examples
    callspec = getattr(item, "callspec", None)
    shard = callspec.params.get("bertcheck_shard") if callspec is not None else None
    return shard.examples(max_examples) if shard is not None else max_examples


def _explicit(own: settings) -> dict:
    """What `own` sets itself: the fields that differ from what it falls back on (none for a profile)."""
    if any(own is registered for registered in getattr(settings, "_profiles", {}).values()):
        return {}
    fallback = getattr(own, "_fallback", None)
    if fallback is None:
        return {}
    changed = {f: getattr(own, f) for f in _FIELDS if getattr(own, f) != getattr(fallback, f)}
    if changed.get("derandomize"):
        changed.pop("database", None)  # derandomize=True implies database=None; naming both is refused
    return changed
