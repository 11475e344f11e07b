"""Whether a pytest run asks for bertcheck, what it names to check, and whether it checked it.

A project that installs bertcheck gets its plugin in every run (the ``pytest11`` entry point). A run
asks for bertcheck when it names something to check (``--bert-model``, ``--bert-impl``,
``--bert-model-impl``, ``--bert-baseline``, BERTCHECK_MODEL), a bertcheck run option or variable, or
collects bertcheck's properties; any other run is left as it would be without bertcheck. A run that
names something to check and gives no test paths collects the shipped properties (`add_properties`);
one whose paths hold no test that checks what it named is red, never green (`unchecked`).

Imports: the standard library only; it reads pytest's ``config`` by duck type.
"""

from __future__ import annotations

import os
from pathlib import Path

# Options that name what to check: given any, the run checks it with bertcheck's properties.
WHAT_TO_CHECK = ("bert_model", "bert_impl", "bert_model_impl", "bert_baseline")
# Options and variables that ask for bertcheck without naming a model.
RUN_OPTIONS = (
    "bert_split",
    "bert_db",
    "bert_db_readonly",
    "bert_worst_json",
    "bert_store_durations",
    "bert_durations",
)
VARIABLES = ("BERTCHECK_MODEL", "BERTCHECK_FAMILY", "BERTCHECK_PROFILE", "BERTCHECK_SPLIT", "BERTCHECK_DB")
# The fixture each option's subject reaches a test through (`unchecked`).
_FIXTURE_OF = {"bert_impl": "bert_layer_impl", "bert_model_impl": "bert_model_impl", "bert_model": "bert"}


def shipped_properties() -> Path:
    """The directory of bertcheck's properties as installed (`bertcheck.suite`): the package's own
    copy, or the checkout's ``properties/`` under an editable install, or beside the package where a
    checkout is imported without being installed (``PYTHONPATH=. pytest -p bertcheck.plugin``)."""
    import importlib.util

    spec = importlib.util.find_spec("bertcheck.suite")
    if spec is None or not spec.submodule_search_locations:
        return (Path(__file__).resolve().parents[2] / "properties").resolve()
    return Path(next(iter(spec.submodule_search_locations))).resolve()


def collects(args: list[str], where: Path) -> bool:
    """Whether collecting `args` reaches `where`: an argument names it, a file in it, or a directory
    above it by a path pytest walks (not through a virtual environment's site-packages or a dot folder)."""
    for arg in args:
        path = Path(arg.split("::")[0]).resolve()
        if path == where or where in path.parents:
            return True
        if path in where.parents:
            between = where.relative_to(path).parts
            if not any(p == "site-packages" or p.startswith(".") for p in between):
                return True
    return False


def asks_for_bertcheck(config) -> bool:
    """A run asks for bertcheck when it names something to check or a bertcheck run option, sets a
    BERTCHECK_* variable, or collects bertcheck's properties (this checkout's own runs)."""
    return (
        any(config.getoption(o, None) for o in WHAT_TO_CHECK + RUN_OPTIONS)
        or any(os.environ.get(v) for v in VARIABLES)
        or collects(config.args, shipped_properties())
    )


def what_to_check(config) -> list[str]:
    """The options given that name what to check, as the user typed them."""
    given = [f"--{o.replace('_', '-')}" for o in WHAT_TO_CHECK if config.getoption(o, None)]
    return given + [v for v in ("BERTCHECK_MODEL", "BERTCHECK_FAMILY") if os.environ.get(v)]


def add_properties(config) -> None:
    """Given an option that names what to check and no test paths, collect bertcheck's properties unless
    the run reaches them already: `pytest --bert-impl mypkg:make_layer` in a user's project checks the
    candidate, never just the project's own tests. The directory, so node ids read
    ``test_layernorm.py::test_...`` (a file given by name gets an empty one outside the rootdir). With
    paths given, they are what runs; `unchecked` makes sure some test there checked what was named."""
    source = getattr(config, "args_source", None)  # pytest >= 7.3: where the paths to collect came from
    explicit = source is not None and source.name == "ARGS"
    if not what_to_check(config) or explicit:
        return
    where = shipped_properties()
    if not collects(config.args, where):
        config.args.append(str(where))


def unchecked(config, used: set[str]) -> list[str]:
    """What the options named that no test of the run checked, given the bertcheck fixtures its items
    `used`: `--bert-impl X` with test paths that hold no property taking a layer candidate checked nothing."""
    missing = [
        f"--{option.replace('_', '-')}"
        for option, fixture in _FIXTURE_OF.items()
        if config.getoption(option) and fixture not in used
    ]
    if "bert" not in used:
        missing += [v for v in ("BERTCHECK_MODEL", "BERTCHECK_FAMILY") if os.environ.get(v)]
    return missing
