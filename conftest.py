"""Root conftest: offline always. (The Hypothesis profiles come with bertcheck's pytest plugin.)"""

import os

# Model hubs are never contacted: every model comes from a package, a directory or the local cache.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
