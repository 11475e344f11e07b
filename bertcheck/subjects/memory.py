"""Memory per process: hand freed memory back to the OS, size `-n auto` by memory as well as cores,
and say when a test item took a worker past its budget.

Measured on the 2-core machine (ci profile, both default models): a worker peaked at 8.7 GiB while
holding ~1 GiB of tensors. glibc keeps freed heap memory for reuse rather than returning it, and
activations of every size fragment the heap, so RSS only grew. `trim()` (glibc's malloc_trim)
after each test item, and after each example near the budget (`relieve`), gives the free pages back: converting
bert-base to float64 and back left RSS at 1.33 GiB, 0.79 GiB after a 20 ms trim. (Fixing glibc's
mmap threshold at 1 MiB did the same but cost every large allocation fresh page faults: 70 million
in one suite run, 150 s of system time.)
"""

from __future__ import annotations

import math
import os
import resource
import sys

# What one xdist worker may use, in GiB, unless BERTCHECK_WORKER_MEMORY says otherwise: the ci
# profile on both default models stays under it (see the README's benchmark table).
DEFAULT_BUDGET_GIB = 2.0
_LIBC: list = []  # [glibc] once loaded, [None] where there is none


def trim() -> None:
    """Give the heap's free pages back to the OS (glibc's malloc_trim); nothing where there is no glibc."""
    if not _LIBC:
        _LIBC.append(None)
        if sys.platform.startswith("linux"):
            import ctypes

            try:
                _LIBC[0] = ctypes.CDLL("libc.so.6")
                _LIBC[0].malloc_trim  # noqa: B018 - musl has no malloc_trim
            except (OSError, AttributeError):
                _LIBC[0] = None
    if _LIBC[0] is not None:
        _LIBC[0].malloc_trim(0)


def rss_gib() -> float | None:
    """This process's resident memory now (Linux), or None where unknown."""
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**30
    except (OSError, ValueError, IndexError):
        return None


# An example fed this many tokens or more (batch x tokens: one full-length row) is followed by a trim
# whatever the memory: it ran for ~0.3 s (MiniLM) to seconds (bert-base, float64), so a ~20 ms trim is
# a few per cent of it, and the hundreds of MB it freed are not left fragmented under the next one.
LARGE_INPUT = 512


def relieve() -> None:
    """After an example: give freed heap back when this process holds over three quarters of its
    budget, or the example was large (`LARGE_INPUT`). A trim costs ~20 ms, an RSS read microseconds:
    most examples pay only the read, and the heavy ones (float64 gradients free 0.7 GB each) do not
    leave the next one a fragmented heap."""
    large = _SINCE.pop("size", 0) >= LARGE_INPUT
    now = rss_gib()
    if large or (now is not None and now > 0.75 * _budget()):
        trim()


_BUDGETS: list = []


def _budget() -> float:
    if not _BUDGETS:
        try:
            _BUDGETS.append(budget_gib())
        except ValueError:  # the plugin reports a bad value as a usage error; here, the default
            _BUDGETS.append(DEFAULT_BUDGET_GIB)
    return _BUDGETS[0]


def budget_gib() -> float:
    """The memory budget of one worker: $BERTCHECK_WORKER_MEMORY (GiB) or the default."""
    value = os.environ.get("BERTCHECK_WORKER_MEMORY")
    if not value:
        return DEFAULT_BUDGET_GIB
    try:
        budget = float(value)
    except ValueError:
        raise ValueError(f"BERTCHECK_WORKER_MEMORY={value!r} is not a number of GiB") from None
    if not math.isfinite(budget) or budget <= 0:  # nan compares false with everything: refuse it here
        raise ValueError(f"BERTCHECK_WORKER_MEMORY={value!r} must be a positive, finite number of GiB")
    return budget


def peak_rss_gib() -> float:
    """This process's peak resident memory so far: on Linux its VmHWM, the peak of this program alone.
    Linux's ru_maxrss also keeps the peak of the process it was spawned from (exec carries it over): a
    `bertcheck` run started by a 2 GiB pytest worker said 2.09 GiB where its own peak was 1.27."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 2**20  # KiB
    except OSError:  # not Linux
        pass
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2**30 if sys.platform == "darwin" else peak / 2**20  # bytes on macOS, KiB on Linux


def available_gib() -> float | None:
    """Memory the kernel says new processes can have (MemAvailable), or None where unknown."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) / 2**20
    except OSError:
        pass
    return None


def cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # macOS
        return os.cpu_count() or 1


def auto_workers() -> tuple[int, str]:
    """How many workers `-n auto` starts: one per core, but no more than fit in the memory available
    at one budget each. With the reason, for the run header."""
    n_cores, free, budget = cores(), available_gib(), budget_gib()
    if free is None:
        return n_cores, f"{n_cores} cores"
    fit = max(1, int(free // budget))
    why = f"{n_cores} cores, {free:.1f} GiB available at {budget:g} GiB per worker"
    return min(n_cores, fit), why


# ---- what the running test item fed the model, for the over-budget warning ----------------------

_LARGEST: dict = {}
_SINCE: dict = {}  # the largest input since the last example ended (`relieve`)


def note_input(batch: int, tokens: int, dtype) -> None:
    """Called for every encoded input: the item's largest (by batch x tokens) is named if it goes over budget."""
    _SINCE["size"] = max(_SINCE.get("size", 0), batch * tokens)
    if batch * tokens > _LARGEST.get("size", 0):
        _LARGEST.update(
            size=batch * tokens, text=f"batch {batch} x {tokens} tokens, {str(dtype).removeprefix('torch.')}"
        )


def forget_inputs() -> None:
    _LARGEST.clear()


def largest_input() -> str:
    return _LARGEST.get("text", "no model input")


class OverBudget:
    """Says once, and again each time the peak grows by another quarter GiB, that a test item took
    this process past its budget: which item, its largest input, the peak and the budget."""

    def __init__(self, budget: float):
        self.budget, self.said = budget, 0.0

    def after(self, nodeid: str) -> str | None:
        peak = peak_rss_gib()
        if peak <= self.budget or peak < self.said + 0.25:
            return None
        self.said = peak
        return (
            f"bertcheck: this worker's memory peaked at {peak:.2f} GiB, past its budget of {self.budget:g} GiB, "
            f"during {nodeid} (largest input: {largest_input()}). Run fewer workers (-n), or raise "
            f"BERTCHECK_WORKER_MEMORY if the machine has the memory: -n auto counts it."
        )
