"""Variant selection: pick a differentiable Mitsuba variant that works here.

Order of preference: the ``PATHGRAD_VARIANT`` environment variable, then
``cuda_ad_rgb`` where a CUDA device is usable, else ``llvm_ad_rgb``. Scalar
variants cannot differentiate and are refused. Dr.Jit's LLVM backend needs
libLLVM 16 or newer (15 aborts the process at JIT time), so that is checked
before the first kernel is compiled rather than discovered as a crash.
"""

from __future__ import annotations

import os

import drjit as dr
import mitsuba as mi

ENV_VAR = "PATHGRAD_VARIANT"
MIN_LLVM = 16

_LLVM_HELP = (
    "Dr.Jit's LLVM backend needs libLLVM {min} or newer{found}. "
    "On Debian/Ubuntu run 'apt-get install -y libllvm19' (as root), or run "
    "'bash scripts/setup.sh' from the pathgrad checkout which does it for you; "
    "elsewhere install LLVM >= {min} and set DRJIT_LIBLLVM_PATH to its libLLVM.so."
)


class VariantError(RuntimeError):
    """No usable differentiable Mitsuba variant (scalar variant, no libLLVM, ...)."""


def _check_llvm() -> None:
    if not dr.has_backend(dr.JitBackend.LLVM):
        raise VariantError(_LLVM_HELP.format(min=MIN_LLVM, found=" and none was found"))
    try:
        version = tuple(dr.detail.llvm_version())
    except Exception:  # pragma: no cover - API absent on other Dr.Jit builds
        return
    if version and version[0] < MIN_LLVM:
        found = " but found libLLVM %s" % ".".join(map(str, version))
        raise VariantError(_LLVM_HELP.format(min=MIN_LLVM, found=found))


def check_variant(name: str | None = None) -> str:
    """Raise :class:`VariantError` unless ``name`` (default: the active variant)
    is a differentiable variant whose backend can run here."""
    name = name or mi.variant()
    if name is None:
        raise VariantError("No Mitsuba variant is set; call pathgrad.set_variant().")
    if name.startswith("scalar"):
        raise VariantError(
            f"Mitsuba variant '{name}' is a scalar variant, which cannot compute "
            "gradients. Use a differentiable one: pathgrad.set_variant() picks "
            "'cuda_ad_rgb' or 'llvm_ad_rgb' (or set PATHGRAD_VARIANT=llvm_ad_rgb).")
    if "_ad_" not in name:
        raise VariantError(
            f"Mitsuba variant '{name}' has no automatic differentiation; use an "
            "'*_ad_*' variant such as 'llvm_ad_rgb'.")
    if "polarized" in name or "spectral" in name:
        raise VariantError(
            f"Variant '{name}' is not supported: pathgrad renders RGB and mono "
            "variants only. Use 'llvm_ad_rgb' or 'cuda_ad_rgb' (or '*_ad_mono').")
    if name.startswith("llvm"):
        _check_llvm()
    elif name.startswith("cuda") and not dr.has_backend(dr.JitBackend.CUDA):
        raise VariantError(
            f"Variant '{name}' needs a CUDA GPU and driver, and none is usable here. "
            "Use 'llvm_ad_rgb' (set PATHGRAD_VARIANT=llvm_ad_rgb).")
    return name


def default_variant() -> str:
    env = os.environ.get(ENV_VAR, "").strip()
    if env:
        if env not in mi.variants():
            raise VariantError(
                f"{ENV_VAR}={env!r} is not a Mitsuba variant; choose one of "
                f"{[v for v in mi.variants() if '_ad_' in v and ('rgb' in v or 'mono' in v) and 'polarized' not in v]}.")
        return env
    if dr.has_backend(dr.JitBackend.CUDA) and "cuda_ad_rgb" in mi.variants():
        return "cuda_ad_rgb"
    return "llvm_ad_rgb"


def set_variant(name: str | None = None) -> str:
    """Select and activate a differentiable Mitsuba variant.

    ``name`` defaults to ``$PATHGRAD_VARIANT``, else ``cuda_ad_rgb`` where a GPU
    is usable, else ``llvm_ad_rgb``. Returns the variant's name. Raises
    :class:`VariantError` with instructions when the variant cannot work here.
    """
    name = name or default_variant()
    check_variant(name)
    if mi.variant() != name:
        mi.set_variant(name)
    # Our integrator is a Python plugin: (re)register it for this variant.
    from . import integrator as _integrator
    _integrator.register()
    return name


def ensure_variant() -> str:
    """Used by the API entry points: the active variant must be differentiable."""
    return check_variant(mi.variant())
