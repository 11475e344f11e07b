"""A candidate's outputs as torch tensors, whatever array type it gives them in.

Engines and ports give numpy arrays (onnxruntime, most C++ and Rust bindings), or their framework's own
arrays: JAX, TensorFlow/Keras, MLX and CuPy arrays all speak DLPack (``__dlpack__``), and most give
``__array__``. Each is converted once, sharing its memory where it can:

- a torch tensor is taken as it is;
- anything with ``__dlpack__`` through `torch.from_dlpack` (no copy, on its own device);
- anything with ``__array__`` through numpy (no copy for a writable numpy array; a read-only one, which
  DLPack refuses to export, is copied, as torch cannot hold read-only memory).

What it converts to is then validated like any tensor (shape, dtype, device, finiteness).
"""

from __future__ import annotations

import torch


class NotAnArray(TypeError):
    """The value is none of the array types above."""


def to_torch(value) -> torch.Tensor:
    """`value` as a torch tensor (see the module's note); `NotAnArray` when it is not an array at all."""
    if isinstance(value, torch.Tensor):
        return value
    if hasattr(value, "__dlpack__"):
        try:
            return torch.from_dlpack(value)
        except (BufferError, RuntimeError, TypeError):  # a read-only numpy array; a dtype DLPack lacks
            if not hasattr(value, "__array__"):
                raise
    if hasattr(value, "__array__"):
        import numpy as np

        array = np.asarray(value)
        if array.dtype == object:
            raise NotAnArray(f"an array of Python objects ({type(value).__name__})")
        return torch.from_numpy(array if array.flags.writeable else array.copy())
    raise NotAnArray(type(value).__name__)


def kind_of(value) -> str:
    """What a value is, as a message says it: ``numpy.ndarray``, ``jaxlib...ArrayImpl``, ``torch.Tensor``."""
    t = type(value)
    return f"{t.__module__}.{t.__qualname__}" if t.__module__ != "builtins" else t.__qualname__
