"""The device guard: bertcheck's own code names the device of every tensor it makes, checked on the CPU."""

import pytest
import torch
from torch.overrides import _get_current_function_mode_stack

import bertcheck
from bertcheck.tools import cli
from bertcheck.inputs.devices import DeviceNotNamed, _Guard, guard, unguarded

_SOURCE = """
import torch

def stray(shape):
    return torch.randn(shape)

def deliberate(shape):
    return torch.randn(shape, device="cpu")
"""


def _module(name: str) -> dict:
    """Functions compiled as if they were the module `name` (the guard judges code by its module)."""
    namespace = {"__name__": name}
    exec(compile(_SOURCE, f"{name.replace('.', '/')}.py", "exec"), namespace)
    return namespace


def _guarded() -> bool:
    return any(isinstance(mode, _Guard) for mode in _get_current_function_mode_stack())


def test_bertcheck_code_that_makes_a_tensor_without_a_device_fails_naming_the_file_and_line():
    ours = _module("bertcheck.somewhere")
    with guard(), pytest.raises(DeviceNotNamed) as caught:
        ours["stray"]((2, 3))
    assert "bertcheck/somewhere.py:5 (bertcheck.somewhere) calls torch.randn without device=" in str(caught.value)


def test_a_deliberate_cpu_tensor_and_code_outside_bertcheck_pass_the_guard():
    ours, theirs = _module("bertcheck.somewhere"), _module("transformers.somewhere")
    with guard():
        assert ours["deliberate"]((2,)).device.type == "cpu"
        assert theirs["stray"]((2,)).device.type == "cpu"


def test_every_test_item_runs_under_the_guard():
    assert _guarded()  # tests/conftest.py's device_guard, as the plugin guards bertcheck's properties


def test_nested_guards_are_one_and_a_candidate_runs_with_it_lifted():
    with guard(), guard():
        assert sum(isinstance(mode, _Guard) for mode in _get_current_function_mode_stack()) == 1
        with unguarded():
            assert not _guarded()  # what a torch.compile'd candidate needs
        assert _guarded()


def test_a_candidate_is_built_and_called_with_the_guard_lifted(tiny):
    seen = []

    def factory(layer, config):
        seen.append(_guarded())

        def fn(x, mask):
            seen.append(_guarded())
            return x.clone()  # determinism holds for it: all this test needs

        return fn

    bertcheck.check_layer(factory, tiny, properties=["determinism"], examples=1, dtypes=(torch.float32,))
    assert seen and not any(seen)


def test_every_cli_command_runs_under_the_guard(monkeypatch):
    seen = []
    monkeypatch.setattr(cli, "_main", lambda args: seen.append(_guarded()) or 0)
    with unguarded():  # outside the plugin's guard, as on a user's command line
        assert not _guarded()
        assert cli.main(["check", "residual-identity", "--model", "random:tiny", "--texts", '["hi"]']) == 0
    assert seen == [True]
