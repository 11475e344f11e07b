"""Devices: which ones this machine has, and a guard that bertcheck never makes a tensor on the wrong one.

On cuda or mps every tensor a property makes must sit on the input's device: one made without a
device lands on the CPU and meets the input in the next op ("Expected all tensors to be on the same
device"), a crash that CI, which has no GPU, would never see. So bertcheck's own code names a device at
every tensor it creates (``device=x.device``, or ``device="cpu"`` for a deliberate CPU tensor such as
noise from a seeded CPU generator, moved before use), and `guard` enforces it on any machine: inside it,
a tensor constructor called from a ``bertcheck`` module without ``device=`` raises `DeviceNotNamed`
naming the file and line. Code that is not bertcheck's (transformers, torch) is left alone, and a
user's candidate runs with the guard lifted (`unguarded`): torch.compile cannot trace under a
TorchFunctionMode. The plugin runs every test item under the guard, the CLI every command.
"""

from __future__ import annotations

import sys
from contextlib import contextmanager

import torch
from torch.overrides import TorchFunctionMode


def canonical(device: str) -> str:
    """`device` as bertcheck names it everywhere: "cpu" for any CPU (cpu:0 too), "cuda" or "cuda:N", "mps";
    ValueError saying what is wrong for a device that is not one or not here."""
    import torch

    try:
        parsed = torch.device(device)
    except (RuntimeError, ValueError):
        raise ValueError(f"--device {device!r} is not a device (cpu, cuda, cuda:1, mps)") from None
    have = available_devices()
    if parsed.type not in have:
        raise ValueError(f"--device {device!r} is not available here (have {have})")
    if parsed.type == "cuda" and parsed.index is not None:
        count = torch.cuda.device_count()
        if parsed.index >= count:
            raise ValueError(
                f"--device {device!r} is not available here ({count} cuda devices: cuda:0 to cuda:{count - 1})"
            )
        return f"cuda:{parsed.index}"
    if parsed.index not in (None, 0):
        raise ValueError(f"--device {device!r} is not available here (have {have})")
    return parsed.type


def available_devices() -> list[str]:
    """cpu always; cuda and mps where this machine has them."""
    found = ["cpu"]
    if torch.cuda.is_available():
        found.append("cuda")
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        found.append("mps")
    return found


class DeviceNotNamed(RuntimeError):
    """bertcheck's own code created a tensor without naming its device: a bug of bertcheck's."""


def _constructors() -> frozenset:
    """The torch functions that take `device=` and default it (torch's own list where it has one)."""
    try:
        from torch.utils._device import _device_constructors

        return frozenset(_device_constructors())
    except ImportError:  # a torch without the private list: the constructors bertcheck could call
        names = (
            "arange",
            "empty",
            "eye",
            "full",
            "linspace",
            "ones",
            "rand",
            "randint",
            "randn",
            "randperm",
            "tensor",
            "zeros",
        )
        return frozenset(getattr(torch, name) for name in names)


class _Guard(TorchFunctionMode):
    def __init__(self):
        super().__init__()
        self.constructors = _constructors()

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if func in self.constructors and kwargs.get("device") is None:
            caller = sys._getframe(1)  # torch's constructors are C functions: this is the Python line that called one
            module = caller.f_globals.get("__name__", "")
            # Not this module: a constructor torch calls on its own while running `func` below arrives here too.
            if (module == "bertcheck" or module.startswith("bertcheck.")) and module != __name__:
                raise DeviceNotNamed(
                    f"{caller.f_code.co_filename}:{caller.f_lineno} ({module}) calls torch.{func.__name__} "
                    "without device=: "
                    "on cuda or mps that tensor would be on the CPU, away from the input. This is a bertcheck bug; "
                    "name the device (the input's, or 'cpu' for a deliberate CPU tensor)."
                )
        return func(*args, **kwargs)


@contextmanager
def guard():
    """Inside the block, a tensor created by bertcheck's code without ``device=`` raises `DeviceNotNamed`.
    Inside a guard already (the CLI or the plugin around `bertcheck.tools.verify.run`), the block runs as it is."""
    from torch.overrides import _get_current_function_mode_stack

    if any(isinstance(mode, _Guard) for mode in _get_current_function_mode_stack()):
        yield
        return
    with _Guard():
        yield


@contextmanager
def unguarded():
    """Lift the guard for the block: for a user's candidate, whose code is not bertcheck's and may be
    compiled (dynamo refuses to trace under a TorchFunctionMode). Only the guard on top of torch's mode
    stack is lifted; under any other mode the block runs as it is."""
    from torch.overrides import _get_current_function_mode, _pop_mode_temporarily

    if isinstance(_get_current_function_mode(), _Guard):
        with _pop_mode_temporarily():
            yield
    else:
        yield
