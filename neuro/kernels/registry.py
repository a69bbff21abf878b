"""The kernel registry: one name, up to three implementations.

Every operation has a NumPy **reference** (always present; the test oracle,
written against ``xp`` so it also runs on CuPy), optionally a **CPU fast
path**, and optionally a **CUDA kernel** whose C source lives in a ``.cu``
file next to the Python module that registers it.

:func:`call` dispatches by the module of the array arguments: CuPy arrays go
to the CUDA kernel (compiled once with ``cupy.RawModule`` and its functions
cached per dtype), NumPy arrays to the CPU fast path if there is one, else to
the reference.

CUDA sources follow one convention so that ``nvcc --ptx`` checks every
instantiation: for a ``cuda_function="name"`` the file defines
``extern "C" __global__`` functions ``name_f32`` and ``name_f64`` (usually
thin wrappers over one ``__device__`` template).
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np

from ..backend import array_module, cupy_status, is_cupy_array

__all__ = ["Kernel", "available", "call", "get", "names", "nvcc_path", "register", "DTYPE_SUFFIX"]

#: Suffix of the CUDA function compiled for each dtype.
DTYPE_SUFFIX = {np.dtype(np.float32): "f32", np.dtype(np.float64): "f64"}

IMPLEMENTATIONS = ("reference", "cpu", "cuda")


@dataclass
class Kernel:
    """One registered operation.

    ``cuda_launch(function, *arrays, **kw)`` receives the compiled
    ``cupy.RawKernel`` for the arrays' dtype and does the launch (grid, block,
    output allocation); it returns what the reference returns.
    """

    name: str
    reference: Callable[..., Any]
    cpu: Callable[..., Any] | None = None
    cuda_source: Path | None = None
    cuda_function: str | None = None
    cuda_launch: Callable[..., Any] | None = None
    doc: str = ""
    _module: Any = field(default=None, repr=False)
    _functions: dict = field(default_factory=dict, repr=False)

    @property
    def has_cuda(self) -> bool:
        return self.cuda_source is not None

    def cuda_kernel(self, dtype: Any):
        """The compiled ``cupy.RawKernel`` for ``dtype`` (compiled on first use, then cached)."""
        dtype = np.dtype(dtype)
        if dtype not in DTYPE_SUFFIX:
            raise TypeError(f"kernel {self.name!r} has CUDA code for float32 and float64 only, got {dtype}")
        if dtype not in self._functions:
            import cupy

            if self._module is None:
                # -I: a source may #include a header that sits beside it (spiking.cu includes philox.cuh)
                self._module = cupy.RawModule(code=self.cuda_source.read_text(),
                                              options=("-std=c++17", f"-I{self.cuda_source.parent}"))
            self._functions[dtype] = self._module.get_function(f"{self.cuda_function}_{DTYPE_SUFFIX[dtype]}")
        return self._functions[dtype]


_REGISTRY: dict[str, Kernel] = {}


def register(
    name: str,
    *,
    reference: Callable[..., Any],
    cpu: Callable[..., Any] | None = None,
    cuda_source: str | Path | None = None,
    cuda_function: str | None = None,
    cuda_launch: Callable[..., Any] | None = None,
    doc: str = "",
) -> Kernel:
    """Register operation ``name``; returns its :class:`Kernel`.

    ``cuda_source`` is the path of the ``.cu`` file; it needs
    ``cuda_function`` (the base name of its ``extern "C"`` kernels) and
    ``cuda_launch``. Registering a name twice raises ``ValueError``.
    """
    if not isinstance(name, str) or not name:
        raise TypeError(f"name must be a non-empty str, got {name!r}")
    if name in _REGISTRY:
        raise ValueError(f"kernel {name!r} is already registered")
    for argument, fn in (("reference", reference), ("cpu", cpu), ("cuda_launch", cuda_launch)):
        if fn is not None and not callable(fn):
            raise TypeError(f"{argument} must be callable, got {type(fn).__name__}")
    if reference is None:
        raise TypeError("reference is required: every kernel keeps a NumPy reference")
    source = None
    if cuda_source is not None:
        source = Path(cuda_source)
        if not source.is_file():
            raise ValueError(f"cuda_source {str(source)!r} does not exist")
        if not cuda_function or cuda_launch is None:
            raise ValueError("cuda_source needs cuda_function (kernel base name) and cuda_launch")
    kernel = Kernel(name, reference, cpu, source, cuda_function, cuda_launch, doc)
    _REGISTRY[name] = kernel
    return kernel


def get(name: str) -> Kernel:
    """The registered :class:`Kernel` ``name`` (``KeyError`` listing the known names otherwise)."""
    try:
        return _REGISTRY[name]
    except KeyError:
        raise KeyError(f"unknown kernel {name!r}; registered: {sorted(_REGISTRY)}") from None


def names() -> list[str]:
    """The registered operation names, sorted."""
    return sorted(_REGISTRY)


def call(name: str, *args: Any, impl: str | None = None, **kwargs: Any) -> Any:
    """Run operation ``name`` on ``args``, dispatching by their array module.

    ``impl`` forces one implementation (``"reference"``, ``"cpu"`` or
    ``"cuda"``), for tests and benchmarks; it raises ``ValueError`` if that
    implementation does not exist or cannot take these arrays.
    """
    kernel = get(name)
    on_gpu = array_module(*args) is not np
    if impl is None:
        impl = "cuda" if on_gpu and kernel.has_cuda else ("cpu" if not on_gpu and kernel.cpu else "reference")
    if impl not in IMPLEMENTATIONS:
        raise ValueError(f"impl must be one of {IMPLEMENTATIONS} or None, got {impl!r}")
    if impl == "reference":
        return kernel.reference(*args, **kwargs)
    if impl == "cpu":
        if kernel.cpu is None or on_gpu:
            raise ValueError(f"kernel {name!r} has no CPU fast path for these arrays")
        return kernel.cpu(*args, **kwargs)
    if not kernel.has_cuda or not on_gpu:
        raise ValueError(f"kernel {name!r} has no CUDA kernel for these arrays (CUDA needs CuPy arrays)")
    # the kernel of the arrays' common dtype: each launcher casts its data to that same dtype
    xp = array_module(*args)
    dtype = xp.result_type(*(a for a in args if is_cupy_array(a)))
    return kernel.cuda_launch(kernel.cuda_kernel(dtype), *args, **kwargs)


def available() -> dict[str, dict[str, bool]]:
    """For each operation, which implementations exist and whether CUDA can run here.

    ``{"sparse_relu": {"reference": True, "cpu": True, "cuda": True, "cuda_usable": False}, ...}``
    """
    gpu = cupy_status()[0]
    return {
        name: {"reference": True, "cpu": k.cpu is not None, "cuda": k.has_cuda, "cuda_usable": k.has_cuda and gpu}
        for name, k in sorted(_REGISTRY.items())
    }


def nvcc_path() -> str | None:
    """The path of ``nvcc``, or ``None`` if it is not installed."""
    candidate = shutil.which("nvcc")
    if candidate:
        return candidate
    fallback = Path("/usr/local/cuda/bin/nvcc")
    return str(fallback) if fallback.exists() else None

