"""bertcheck: property-based verification of the BERT encoder against its architecture.

The pieces, each in its own module: `names` (the activation vocabulary), `reference` (BERT from
scratch), `capture` (one hooked HF forward), `checks` (the invariants), `strategies` (Hypothesis
inputs), `tolerances` (one dtype-keyed table), `models` and `subject` (what is checked), `plugin`
(pytest), `cli` (one-command reproduction), `candidate` and `verify` (checking a reimplementation:
`bertcheck.check_layer`, `bertcheck.check_model`).
"""

__version__ = "0.1.0"

_API = {
    "check_layer": "bertcheck.verify",
    "check_model": "bertcheck.verify",
    "CandidateFailed": "bertcheck.verify",
    "CandidateError": "bertcheck.candidate",
    "reads_only": "bertcheck.candidate",
    "runs": "bertcheck.capabilities",
    "PropertyFailure": "bertcheck.failures",
}


def __getattr__(name):  # lazy: `import bertcheck` (the pytest plugin does) must not import torch
    if name in _API:
        import importlib

        return getattr(importlib.import_module(_API[name]), name)
    raise AttributeError(f"module 'bertcheck' has no attribute {name!r}")
