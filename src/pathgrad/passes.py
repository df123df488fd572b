"""Rendering in passes: a sample count split so that every wavefront fits a
memory budget and Dr.Jit's 32-bit lane index.

A render of ``spp`` samples per pixel equals, in expectation, the
``spp_i / spp``-weighted sum of renders of ``spp_i`` samples with
independent seeds (Σ spp_i = spp). The primal image, its forward derivative
and the adjoint of a loss are all linear in the per-pass estimates, so each
mode accumulates its passes with those weights; the sample budgets of the
boundary estimators are split in the same proportion. The first pass uses
the render's own seed, so a render that fits in one pass is unchanged.

Memory model: a wavefront of ``n`` lanes needs about ``n * bytes_per_lane``
bytes at its peak; the integrator lists its wavefronts (camera samples,
each boundary estimator's samples) with their lanes per sample per pixel,
and :func:`plan` picks the largest per-pass sample count that keeps each
under the budget.
"""

from __future__ import annotations

import math
import os

#: Dr.Jit indexes the lanes of one kernel with 32-bit integers
MAX_LANES = 2**32 - 1

#: lanes of one wavefront in one pass, when one sample per pixel fits in
#: fewer: about 80 s of primal path tracing on 2 CPU cores, so that a
#: progress bar moves and one pass never holds the machine for long
LANES_PER_PASS = 2**26

#: fraction of the memory (host RAM, or the GPU's for CUDA variants) that a
#: render may use when no budget is set
DEFAULT_MEMORY_FRACTION = 0.5

#: assumed device memory when the CUDA driver cannot be asked
FALLBACK_DEVICE_BYTES = 8 * 2**30

#: seed step between passes (golden ratio of 2^32), so that runs with nearby
#: seeds do not share passes
SEED_STEP = 0x9E3779B9


def render_passes(spp: int, seed, pass_spp: int) -> list[tuple[int, object]]:
    """Split ``spp`` samples per pixel into passes of at most ``pass_spp``:
    a list of ``(spp_i, seed_i)`` with ``sum(spp_i) == spp`` and counts as
    equal as possible (at most two distinct values, so at most two kernel
    compilations). The first pass uses ``seed`` itself; later ones seeds
    spread over the 32-bit range. ``seed`` may be an int or a ``mi.UInt32``
    (frozen steps)."""
    if spp <= 0 or pass_spp <= 0:
        raise ValueError(f"spp and pass_spp must be positive, got {spp} and {pass_spp}")
    n = -(-spp // pass_spp)
    q, r = divmod(spp, n)
    counts = [q + 1] * r + [q] * (n - r)
    return [(c, _pass_seed(seed, i)) for i, c in enumerate(counts)]


def _pass_seed(seed, i: int):
    if i == 0:
        return seed
    step = (i * SEED_STEP) & 0xFFFFFFFF
    if isinstance(seed, int):
        return (seed + step) & 0xFFFFFFFF
    return seed + step   # a UInt32 wraps around by itself


def max_pass_spp(wavefronts: list[tuple[str, float, float]], budget_bytes: float) -> int:
    """The most samples per pixel one pass may take.

    ``wavefronts``: ``(name, lanes per unit spp, bytes per lane)`` of each
    wavefront of the render. Raises ValueError when not even one sample per
    pixel fits, saying what it would need."""
    best = math.inf
    for name, lanes, per_lane in wavefronts:
        if lanes <= 0:
            continue
        by_memory = budget_bytes / (lanes * per_lane) if per_lane > 0 else math.inf
        if lanes > MAX_LANES or by_memory < 1:
            need_mb = lanes * per_lane / 2**20
            raise ValueError(
                f"pathgrad: one sample per pixel of the {name} wavefront needs {lanes:.0f} lanes"
                f" and about {need_mb:.3g} MB, beyond "
                + (f"Dr.Jit's {MAX_LANES + 1} lanes" if lanes > MAX_LANES else
                   f"the memory budget of {budget_bytes / 2**20:.3g} MB (memory_budget_mb)")
                + ": render a smaller film (or a crop window), lower that estimator's budget, "
                  "or raise memory_budget_mb.")
        best = min(best, by_memory, max(LANES_PER_PASS / lanes, 1.0))
    return int(best) if best != math.inf else 2**31


def plan(spp: int, seed, wavefronts: list, budget_bytes: float) -> list[tuple[int, object]]:
    """``(spp_i, seed_i)`` of each pass of a render of ``spp`` samples per
    pixel (one pass when everything fits)."""
    return render_passes(spp, seed, min(spp, max_pass_spp(wavefronts, budget_bytes)))


def default_budget_bytes(cuda: bool) -> float:
    """:data:`DEFAULT_MEMORY_FRACTION` of the machine's memory: physical RAM,
    or the first GPU's memory for CUDA variants."""
    total = _cuda_total_bytes() if cuda else _host_total_bytes()
    return DEFAULT_MEMORY_FRACTION * total


def _host_total_bytes() -> float:
    try:
        return float(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"))
    except (ValueError, OSError, AttributeError):  # pragma: no cover - non-POSIX
        return float(FALLBACK_DEVICE_BYTES)


def _cuda_total_bytes() -> float:  # pragma: no cover - needs a GPU
    import ctypes
    try:
        cuda = ctypes.CDLL("libcuda.so.1")
        dev, total = ctypes.c_int(), ctypes.c_size_t()
        if cuda.cuInit(0) or cuda.cuDeviceGet(ctypes.byref(dev), 0) or \
                cuda.cuDeviceTotalMem_v2(ctypes.byref(total), dev):
            return float(FALLBACK_DEVICE_BYTES)
        return float(total.value)
    except (OSError, AttributeError):
        return float(FALLBACK_DEVICE_BYTES)
