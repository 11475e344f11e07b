"""Whether a run asks for bertcheck, what it collects when it names something to check, and what it
named that no test checked (`bertcheck.run.asking`), on a stand-in for pytest's config."""

from pathlib import Path
from types import SimpleNamespace

import pytest

from bertcheck.run import asking


class _Config:
    def __init__(self, args=(), source="INVOCATION_DIR", **options):
        self.args = list(args)
        self.args_source = SimpleNamespace(name=source)
        self.options = options

    def getoption(self, name, default=None):
        return self.options.get(name, default)


@pytest.fixture(autouse=True)
def _no_bertcheck_variables(monkeypatch):
    for name in asking.VARIABLES:
        monkeypatch.delenv(name, raising=False)


def test_a_run_that_names_nothing_of_bertchecks_and_collects_none_of_its_properties_does_not_ask_for_it(tmp_path):
    assert not asking.asks_for_bertcheck(_Config([str(tmp_path)]))


@pytest.mark.parametrize("option", asking.WHAT_TO_CHECK + asking.RUN_OPTIONS)
def test_any_bertcheck_option_asks_for_bertcheck(tmp_path, option):
    assert asking.asks_for_bertcheck(_Config([str(tmp_path)], **{option: "x"}))


def test_a_bertcheck_variable_asks_for_bertcheck(tmp_path, monkeypatch):
    monkeypatch.setenv("BERTCHECK_PROFILE", "dev")
    assert asking.asks_for_bertcheck(_Config([str(tmp_path)]))


def test_collecting_the_shipped_properties_asks_for_bertcheck_but_not_through_a_virtual_environment(tmp_path):
    where = asking.shipped_properties()
    assert asking.asks_for_bertcheck(_Config([str(where / "test_layernorm.py")]))
    assert asking.collects([str(where.parent)], where)
    venv = tmp_path / ".venv" / "lib" / "site-packages" / "bertcheck" / "suite"
    assert not asking.collects([str(tmp_path)], venv)
    assert asking.collects([str(venv.parent)], venv)


def test_naming_a_candidate_without_paths_adds_the_shipped_properties_and_with_paths_adds_nothing(tmp_path):
    config = _Config([str(tmp_path)], bert_impl="mypkg:make_layer")
    asking.add_properties(config)
    assert config.args == [str(tmp_path), str(asking.shipped_properties())]
    given = _Config([str(tmp_path)], source="ARGS", bert_impl="mypkg:make_layer")
    asking.add_properties(given)
    assert given.args == [str(tmp_path)]
    nothing_named = _Config([str(tmp_path)], bert_split="1/2")
    asking.add_properties(nothing_named)
    assert nothing_named.args == [str(tmp_path)]


def test_what_was_named_and_reached_no_test_is_said_as_the_user_typed_it(monkeypatch):
    config = _Config(bert_impl="mypkg:make_layer", bert_model_impl="mypkg:make_model", bert_model=["minilm"])
    assert asking.unchecked(config, set()) == ["--bert-impl", "--bert-model-impl", "--bert-model"]
    assert asking.unchecked(config, {"bert", "bert_layer_impl"}) == ["--bert-model-impl"]
    monkeypatch.setenv("BERTCHECK_MODEL", "minilm")
    assert asking.unchecked(_Config(), set()) == ["BERTCHECK_MODEL"]
    assert asking.unchecked(_Config(), {"bert"}) == []
    assert asking.what_to_check(config) == ["--bert-model", "--bert-impl", "--bert-model-impl", "BERTCHECK_MODEL"]


def test_the_shipped_properties_are_a_directory_of_property_files():
    where = asking.shipped_properties()
    assert isinstance(where, Path) and (where / "test_layernorm.py").exists()
