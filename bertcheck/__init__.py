"""bertcheck: property-based verification of the BERT encoder against its architecture.

The package, by job, each layer importing only those before it:

- `bertcheck.spec`: what BERT computes and how close counts as equal (the activation vocabulary, the
  reference, the tolerance table, comparison, the half-precision rule, the known deviations);
- `bertcheck.inputs`: the examples, the Hypothesis strategies that draw them, the input classes, devices,
  what a candidate declares it runs;
- `bertcheck.subjects`: what is checked (loading and auditing a model, the hooked forward, the
  reimplementation protocol);
- `bertcheck.properties`: every property once, its registry and the failure it raises;
- `bertcheck.run`: a run split over machines, its scheduling and shared example database;
- `bertcheck.plugin`: the pytest plugin, hooks and fixtures;
- `bertcheck.tools`: the CLI, `verify`, baselines, `walk` and the benchmark.

The API a user imports from here: `check_layer`, `check_model`, `runs`, `reads_only`, `PropertyFailure`.
"""

import importlib.abc
import importlib.util
import sys
import warnings

__version__ = "0.1.0"

_API = {
    "check_layer": "bertcheck.tools.verify",
    "check_model": "bertcheck.tools.verify",
    "CandidateFailed": "bertcheck.tools.verify",
    "CandidateError": "bertcheck.subjects.candidate",
    "reads_only": "bertcheck.subjects.candidate",
    "runs": "bertcheck.inputs.capabilities",
    "PropertyFailure": "bertcheck.properties.failures",
}
_LAYERS = ("spec", "inputs", "subjects", "properties", "run", "tools")


def __getattr__(name):  # lazy: `import bertcheck` (the pytest plugin does) must not import torch
    if name in _API:
        return getattr(importlib.import_module(_API[name]), name)
    raise AttributeError(f"module 'bertcheck' has no attribute {name!r}")


class _MovedModules(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """The flat module names of bertcheck 0.1 (``bertcheck.candidate``, ``-p bertcheck.benchstats``, an
    ``--impl bertcheck.candidate:reference_layer``) resolve to the module's place in its layer, with a
    DeprecationWarning naming it, for one release (README, "Layout")."""

    def find_spec(self, fullname, path=None, target=None):
        package, _, name = fullname.partition(".")
        if package != "bertcheck" or "." in name or name in _LAYERS or not name:
            return None
        for layer in _LAYERS:
            if importlib.util.find_spec(f"bertcheck.{layer}.{name}") is not None:
                return importlib.util.spec_from_loader(fullname, self, origin=f"bertcheck.{layer}.{name}")
        return None

    def create_module(self, spec):
        warnings.warn(
            f"{spec.name} is {spec.origin} now; the old name goes in bertcheck 0.2", DeprecationWarning, stacklevel=2
        )
        return importlib.import_module(spec.origin)

    def exec_module(self, module):
        pass  # the module already ran where it lives


if not any(isinstance(finder, _MovedModules) for finder in sys.meta_path):
    sys.meta_path.append(_MovedModules())
