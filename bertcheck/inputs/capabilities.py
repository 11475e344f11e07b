"""What a candidate runs: its dtypes, devices, longest input and largest batch, as its factory declares.

An engine or an export runs what it was built for: float32 only (an int8 engine takes and gives float32
too), the CPU only, up to 128 tokens, batches of up to 4. Its factory says so::

    @bertcheck.runs(dtypes=("float32",), devices=("cpu",), max_tokens=128, max_batch=4)
    def my_engine(hf_model):
        ...

and `bertcheck verify`, the pytest plugin and `check_model` draw only inside that: an input outside what
the candidate declared is never drawn, and the run says what it left out and why. What it returns is still
held to the input's dtype: an output in another dtype is an error. A factory that declares nothing is
asked everything the properties draw.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

import torch

_DTYPES = {"float32": torch.float32, "float64": torch.float64, "float16": torch.float16, "bfloat16": torch.bfloat16}


@dataclass(frozen=True)
class Runs:
    """A candidate's declared capabilities; None: no limit declared."""

    dtypes: tuple[torch.dtype, ...] | None = None
    devices: tuple[str, ...] | None = None
    max_tokens: int | None = None
    max_batch: int | None = None

    def dtypes_of(self, wanted: Iterable[torch.dtype]) -> tuple[torch.dtype, ...]:
        """The dtypes of `wanted` it runs, in `wanted`'s order."""
        return tuple(d for d in wanted if self.dtypes is None or d in self.dtypes)

    def runs_device(self, device: str) -> bool:
        return self.devices is None or torch.device(device).type in {torch.device(d).type for d in self.devices}

    def left_out(self, dtypes: Iterable[torch.dtype], device: str, max_length: int, max_batch: int) -> list[str]:
        """What a run asking `dtypes` on `device`, up to `max_length` tokens and `max_batch` rows, leaves
        out for this candidate, each with why (empty: nothing)."""
        runs = self.dtypes_of(dtypes)
        out = [f"{str(d).removeprefix('torch.')} (it runs {self.says('dtypes')})" for d in dtypes if d not in runs]
        if not self.runs_device(device):
            out.append(f"device {device} (it runs {self.says('devices')})")
        if self.max_tokens is not None and self.max_tokens < max_length:
            out.append(f"inputs of {self.max_tokens + 1}-{max_length} tokens (it takes up to {self.max_tokens})")
        if self.max_batch is not None and self.max_batch < max_batch:
            out.append(f"batches of {self.max_batch + 1}-{max_batch} (it takes up to {self.max_batch})")
        return out

    def says(self, what: str) -> str:
        value = getattr(self, what)
        if value is None:
            return "any"
        if what == "dtypes":
            return ", ".join(str(d).removeprefix("torch.") for d in value)
        return ", ".join(map(str, value)) if isinstance(value, tuple) else str(value)


EVERYTHING = Runs()


def runs(
    *,
    dtypes: Iterable[str | torch.dtype] | None = None,
    devices: Iterable[str] | None = None,
    max_tokens: int | None = None,
    max_batch: int | None = None,
) -> Callable[[Callable], Callable]:
    """Declare what a layer or model factory's function runs (see the module's note). Each argument left
    out is not limited. A mistake in the declaration is a `ValueError` at import, not a run later."""
    declared = Runs(
        dtypes=None if dtypes is None else tuple(_dtype(d) for d in dtypes),
        devices=None if devices is None else tuple(_device(d) for d in devices),
        max_tokens=_positive("max_tokens", max_tokens),
        max_batch=_positive("max_batch", max_batch),
    )
    if declared.dtypes == () or declared.devices == ():
        raise ValueError("bertcheck.runs: dtypes and devices must name at least one each (or be left out)")

    def mark(factory: Callable) -> Callable:
        factory.__bertcheck_runs__ = declared
        return factory

    return mark


def declared(factory: Callable) -> Runs:
    """What `factory` declared with `runs` (`EVERYTHING` where it declared nothing)."""
    return getattr(factory, "__bertcheck_runs__", EVERYTHING)


def _dtype(d) -> torch.dtype:
    if isinstance(d, torch.dtype) and d in _DTYPES.values():
        return d
    if isinstance(d, str) and d.removeprefix("torch.") in _DTYPES:
        return _DTYPES[d.removeprefix("torch.")]
    raise ValueError(f"bertcheck.runs: dtype {d!r} is not one of {', '.join(_DTYPES)}")


def _device(d) -> str:
    try:
        return str(torch.device(d))
    except (RuntimeError, TypeError) as err:
        raise ValueError(f"bertcheck.runs: device {d!r}: {err}") from None


def _positive(name: str, value) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"bertcheck.runs: {name}={value!r} must be a whole number of at least 1")
    return value
