"""One table of properties: the CLI, verify, the bench and the README all read it, and nothing else lists them."""

import re
from pathlib import Path

import pytest
import torch

from bertcheck.tools import cli
from bertcheck.properties import registry
from bertcheck.subjects.candidate import HF_LAYER, HF_MODEL, LayerCandidate, reference_layer
from bertcheck.inputs.cases import Case, LayerCase
from bertcheck.tools.verify import run

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text()


def _choices(command: str) -> list[str]:
    parser = cli._parser()
    sub = next(a for a in parser._actions if a.dest == "command").choices[command]
    return list(next(a for a in sub._actions if a.dest == "property").choices)


def test_the_cli_offers_exactly_the_registrys_properties():
    assert _choices("check") == list(registry.MODEL)
    assert _choices("check-layer") == list(registry.LAYER)


def test_verify_runs_every_property_a_candidate_can_be_asked_and_nothing_else(tiny):
    report = run(LayerCandidate(reference_layer), tiny, examples=1, dtypes=(torch.float32,))
    assert [r.property for r in report.results] == list(registry.for_candidates("layer"))
    assert all(p.on == "any" for p in registry.for_candidates("model").values())


def test_every_property_is_named_in_the_readme():
    for key in [*registry.MODEL, *registry.LAYER]:
        assert f"`{key}`" in README, key


def test_the_readme_layout_table_names_every_module_and_nothing_that_is_gone():
    layout = README.split("## Layout")[1].split("\n## ")[0]
    named = set()
    for cell in re.findall(r"^\| (`[^|]+`) \|", layout, flags=re.M):
        paths = re.findall(r"`([^`]+)`", cell)
        folder = paths[0].rsplit("/", 1)[0] + "/" if "/" in paths[0] else ""
        named |= {p if "/" in p else folder + p for p in paths}
    modules = {p.relative_to(ROOT).as_posix() for p in (ROOT / "bertcheck").rglob("*.py") if p.name != "__init__.py"}
    assert modules - named == set(), "modules missing from the README's layout table"
    assert {p for p in named if not (ROOT / p.rstrip("/")).exists()} == set(), (
        "the layout table names paths that do not exist"
    )


def test_a_property_only_hf_can_be_asked_refuses_a_candidate(tiny):
    with pytest.raises(ValueError, match="gradients checks HF's own model, not a candidate's function"):
        registry.named("model", "gradients")(tiny, Case(("a b",)), LayerCandidate(reference_layer))


def test_old_model_candidate_names_still_resolve():
    assert registry.named("model", "model-padding") is registry.MODEL["padding"]
    with pytest.raises(ValueError, match="unknown layer property 'model-padding'"):
        registry.named("layer", "model-padding")


def test_hf_runs_through_the_same_properties_as_any_candidate(tiny):
    case = LayerCase(layer=1, batch=2, tokens=5, pad=1, scale="unit", seed=3)
    for key, prop in registry.LAYER.items():
        assert prop(tiny, case) <= 1.0, key
        if prop.candidates:
            assert prop(tiny, case, HF_LAYER) <= 1.0 and prop(tiny, case, LayerCandidate(reference_layer)) <= 1.0
    for key in ("padding", "batching", "determinism", "model-equivalence"):
        assert registry.MODEL[key](tiny, Case(("a b c", "d")), HF_MODEL) <= 1.0
