"""Root conftest: offline always, and the Hypothesis profiles (dev, ci, thorough)."""

import os

# Model hubs are never contacted: every model comes from a package, a directory or the local cache.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

from bertcheck.profiles import load_default_profile, register_profiles  # noqa: E402

register_profiles()
load_default_profile()
