import copy
from pathlib import Path

import pytest
import torch

from bertcheck.subjects.subject import Bert

pytest_plugins = ["pytester"]


@pytest.fixture(autouse=True)
def own_tables(monkeypatch):
    """Every test of bertcheck itself records into worst-error and input-class tables of its own,
    dropped when it ends: its broken models' FAILs never reach the end-of-run tables, which then say what
    the run's `properties/` items found (a green `pytest -n auto` of this checkout had shown FAIL in most
    rows of the worst-error table). An inner pytest run in this process (`pytester`) starts from empty
    tables too."""
    from bertcheck.inputs import coverage
    from bertcheck.properties import worst

    monkeypatch.setattr(worst, "WORST", {})
    monkeypatch.setattr(worst, "EXAMPLES", {})
    monkeypatch.setattr(worst, "FAILED_ROWS", set())
    for name in ("COUNTS", "APPLICABLE", "NOT_APPLICABLE"):
        monkeypatch.setattr(coverage, name, {})


@pytest.fixture(autouse=True)
def device_guard():
    """Every test of bertcheck's own runs under the device guard (`bertcheck.inputs.devices`), as the plugin runs
    bertcheck's properties: bertcheck code a unit test reaches must name the device of what it makes."""
    from bertcheck.inputs.devices import guard

    with guard():
        yield


def _load(model_name: str, cache_dir: Path) -> Bert:
    return Bert.once(model_name, cache_dir)  # the process's one copy, shared with the plugin's `bert` fixture


@pytest.fixture(scope="session")
def model_cache(request, tmp_path_factory) -> Path:
    cache = getattr(request.config, "cache", None)  # absent under -p no:cacheprovider
    return cache.mkdir("bertcheck-models") if cache is not None else tmp_path_factory.mktemp("bertcheck-models")


@pytest.fixture(scope="session")
def tiny(model_cache) -> Bert:
    """random:tiny (hidden 64, 2 layers): ~3 ms a forward. Never mutate it: use `fresh`."""
    return _load("random:tiny", model_cache)


@pytest.fixture(scope="session")
def minilm(model_cache) -> Bert:
    """The trained all-MiniLM-L6-v2. Never mutate it: use `fresh`."""
    return _load("minilm", model_cache)


@pytest.fixture
def fresh(model_cache):
    """fresh(model_name, dtype) -> a Bert over its own copy of the HF model, free to break."""

    def make(model_name: str = "random:tiny", dtype: torch.dtype = torch.float32) -> Bert:
        base = _load(model_name, model_cache)
        model = copy.deepcopy(base.model()).to(dtype).eval()
        return Bert(base.model_name, model, base.tokenizer)

    return make
