"""Input checks shared by every entry point (``pathgrad.render`` and the
``pathgrad`` integrator behind ``mi.render``): each raises an exception that
names the offending parameter or setting and says what to do.

Costs: the sample-count and depth checks are host arithmetic; the parameter
check is one reduction over the gradient-enabled values (one host read); the
image check is one reduction over the finished image plus the vertex buffers
(one host read), and only when it fails a traversal of the scene to name the
culprit. Inside a frozen function (``dr.freeze``) host reads are not
possible: there the value checks are skipped (validate before recording).
"""

from __future__ import annotations

import numbers
from typing import Mapping

import drjit as dr
import mitsuba as mi


class ParameterError(KeyError, ValueError):
    """An unknown, non-differentiable or non-finite scene parameter."""

    def __str__(self):  # KeyError would print the message with quotes
        return str(self.args[0]) if self.args else ""


def freezing() -> bool:
    """True while a frozen function is being recorded (no host reads then)."""
    return bool(dr.flag(dr.JitFlag.FreezingScope))


# --------------------------------------------------------------------------
# settings
# --------------------------------------------------------------------------

def check_spp(spp, name: str = "spp", *, allow_zero: bool = False) -> int:
    """``spp`` as an int, or ValueError naming ``name``: a positive integer
    (0 too with ``allow_zero``: "the sensor's own sample count")."""
    ok = isinstance(spp, numbers.Integral) and not isinstance(spp, bool) and \
        (spp > 0 or (allow_zero and spp == 0))
    if not ok:
        allowed = "a non-negative integer (0: the sensor's sample count)" if allow_zero \
            else "a positive integer"
        raise ValueError(f"{name} (samples per pixel) must be {allowed}, got {spp!r}")
    return int(spp)


def effective_spp(sensor: mi.Sensor, spp: int, name: str = "spp") -> int:
    """The samples per pixel a render takes: ``spp``, or the sensor sampler's
    ``sample_count`` when ``spp`` is 0 (ValueError if that is 0 too)."""
    spp = check_spp(spp, name, allow_zero=True)
    if spp:
        return spp
    own = int(sensor.sampler().sample_count())
    if own <= 0:
        raise ValueError(f"{name}=0 asks for the sensor's sample count, but its sampler has "
                         f"sample_count={own}: pass {name} > 0 or give the sampler a positive "
                         "sample_count.")
    return own


def check_seed(seed, name: str = "seed") -> None:
    """A seed is an integer in [0, 2^32) or a Dr.Jit ``UInt32`` (frozen steps)."""
    if isinstance(seed, numbers.Integral) and not isinstance(seed, bool):
        if not 0 <= int(seed) < 2**32:
            raise ValueError(f"{name} must be in [0, 2^32), got {seed}")
        return
    if dr.is_jit_v(seed) and dr.is_integral_v(seed) and dr.width(seed) == 1:
        return
    raise ValueError(f"{name} must be an integer in [0, 2^32) (or a mi.UInt32), got {seed!r}")


# --------------------------------------------------------------------------
# parameters
# --------------------------------------------------------------------------

def attached(params: Mapping) -> dict:
    """The entries of ``params`` that carry gradients."""
    return {k: v for k, v in params.items() if dr.grad_enabled(v)}


def check_params(params: Mapping | None) -> None:
    """Raise :class:`ParameterError` for gradient-enabled parameters that
    cannot be differentiated: writes not yet applied by ``params.update()``,
    values Mitsuba flags non-differentiable, and NaN or infinite values."""
    if params is None:
        return
    pending = getattr(params, "nodes_to_update", None)
    if pending:
        names = sorted({k for ks in pending.values() for k in ks})
        raise ParameterError(
            f"params has writes that params.update() has not applied yet (to {names}): call "
            "params.update() after writing parameters and before rendering, so the scene "
            "(acceleration structure, normals, textures) follows them.")
    grads = attached(params)
    if hasattr(params, "flags"):
        flagged = [k for k in grads if params.flags(k) & mi.ParamFlags.NonDifferentiable]
        if flagged:
            raise ParameterError(
                f"Scene parameter(s) {flagged} have gradients enabled but Mitsuba flags them "
                "non-differentiable, so no gradient would reach them: disable their gradients "
                "(see docs/limits.md for what pathgrad differentiates).")
    check_finite(grads)


def check_finite(params: Mapping) -> None:
    """Raise :class:`ParameterError` if a gradient-enabled floating-point
    parameter holds NaN or infinite values (usually a diverged optimiser).
    One reduction and one host read; skipped while freezing."""
    keys = [k for k, v in params.items()
            if dr.is_float_v(v) and dr.is_jit_v(v) and dr.grad_enabled(v)]
    if not keys or freezing():
        return
    bad = _non_finite(keys, [params[k] for k in keys])
    if bad:
        raise ParameterError(
            f"Scene parameter(s) {bad} contain NaN or infinite values. This "
            "usually means an optimiser diverged: lower its learning rate, clamp "
            "the parameters to their valid range, or check the loss for NaNs.")


def _flat(v):
    """A tensor's flat array (reductions of tensors give tensors); others as they are."""
    return v.array if dr.is_tensor_v(v) else v


def _non_finite(names: list, values: list) -> list:
    """The names whose values hold a NaN or an infinity (one host read)."""
    tests = [dr.all(dr.isfinite(_flat(dr.detach(v))), axis=None) for v in values]
    flags = dr.zeros(mi.Bool, len(tests))
    for i, t in enumerate(tests):
        dr.scatter(flags, t, i)
    flags = flags.numpy() if len(tests) else []
    return [n for n, ok in zip(names, flags) if not ok]


# --------------------------------------------------------------------------
# images and gradients
# --------------------------------------------------------------------------

NON_FINITE_GRADIENT_HINT = (
    "Mitsuba's derivative of a face normal overflows float32 for faces whose edge cross "
    "product is below about 1.4e-13 square scene units (edges under about 4e-7 units, e.g. "
    "a model in metres scaled to micrometres): express the scene in larger units. "
    "Otherwise please report it with the scene.")


def check_gradients(params) -> None:
    """After a backward pass: raise FloatingPointError naming the
    gradient-enabled parameters whose gradients are not finite (one host
    read; skipped while freezing)."""
    if params is None or freezing():
        return
    grads = {k: dr.grad(v) for k, v in attached(params).items()
             if dr.is_float_v(v) and dr.is_jit_v(v)}
    bad = _non_finite(list(grads), list(grads.values())) if grads else []
    if bad:
        raise FloatingPointError(f"pathgrad: the gradients of {bad} contain NaN or infinite "
                                 "values although the parameters are finite. "
                                 + NON_FINITE_GRADIENT_HINT)


def check_gradient_image(img) -> None:
    """After a forward pass: raise FloatingPointError if the gradient image
    is not finite (one reduction and one host read; skipped while freezing)."""
    if freezing():
        return
    if not bool(dr.all(dr.isfinite(img.array), axis=None)[0]):
        raise FloatingPointError("pathgrad: the forward-mode gradient image contains NaN or "
                                 "infinite values although the parameters are finite. "
                                 + NON_FINITE_GRADIENT_HINT)

def check_render(scene: mi.Scene, img: mi.TensorXf) -> None:
    """After a primal render: raise if the image or a mesh's vertex positions
    hold NaN or infinite values, naming the scene parameters responsible
    (found by a traversal, only when the cheap check fails)."""
    if freezing():
        return
    meshes = [s for s in scene.shapes() if isinstance(s, mi.Mesh)]
    ok = dr.all(dr.isfinite(dr.detach(img.array)), axis=None)
    for m in meshes:
        ok &= dr.all(dr.isfinite(dr.detach(m.vertex_positions_buffer())), axis=None)
    if bool(ok[0]):
        return
    culprits = non_finite_scene_parameters(scene)
    if culprits:
        raise ParameterError(
            f"Scene parameter(s) {culprits} contain NaN or infinite values, so the render "
            "is not meaningful: write finite values (an optimiser that diverged needs a "
            "lower learning rate or clamping).")
    raise FloatingPointError(
        "pathgrad: the rendered image contains NaN or infinite values although every "
        "scene parameter is finite. Please report this with the scene (a plugin or a "
        "texture may produce them).")


def non_finite_scene_parameters(scene: mi.Scene) -> list:
    """Keys of ``mi.traverse(scene)`` whose floating-point values are not finite."""
    params = mi.traverse(scene)
    keys, values = [], []
    for k in params.keys():
        v = params[k]
        if dr.is_jit_v(v) and dr.is_float_v(v) and dr.width(v) > 0:
            keys.append(k)
            values.append(v)
    return _non_finite(keys, values) if keys else []
