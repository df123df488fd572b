"""Input checks shared by every entry point (``pathgrad.render`` and the
``pathgrad`` integrator behind ``mi.render``): each raises an exception that
names the offending parameter or setting and says what to do.

Costs: the sample-count and seed checks are host arithmetic; every value
check is a set of lazy scatter-reductions (:func:`non_finite_flags`) read
with one host synchronisation, where the caller waits anyway (the image
check of ``pathgrad.render`` is read at the end of its gradient pass); a
traversal of the scene to name the culprit runs only when a check fails.
Inside a frozen function (``dr.freeze``) host reads are not possible: there
the value checks are skipped (validate before recording).
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

NON_FINITE_PARAMETERS = (
    "Scene parameter(s) {} contain NaN or infinite values, so the render is not meaningful. "
    "This usually means an optimiser diverged: lower its learning rate, clamp the "
    "parameters to their valid range, or check the loss for NaNs.")

def attached(params: Mapping) -> dict:
    """The entries of ``params`` that carry gradients."""
    return {k: v for k, v in params.items() if dr.grad_enabled(v)}


def check_params(params: Mapping | None, finite: bool = True) -> None:
    """Raise :class:`ParameterError` for gradient-enabled parameters that
    cannot be differentiated: writes not yet applied by ``params.update()``,
    values Mitsuba flags non-differentiable, and (``finite``) NaN or
    infinite values (the only part that reads from the device)."""
    if params is None:
        return
    pending = getattr(params, "nodes_to_update", None)
    if pending:
        names = _pending_keys(params, pending)
        raise ParameterError(
            f"params has writes that params.update() has not applied yet (to {names}): call "
            "params.update() after writing parameters and before rendering, so the scene "
            "(acceleration structure, normals, textures) follows them.")
    grads = attached(params)
    if hasattr(params, "flags"):
        flagged = [k for k in grads if params.flags(k) & mi.ParamFlags.NonDifferentiable
                   and not is_camera_parameter(params, k)]
        if flagged:
            raise ParameterError(
                f"Scene parameter(s) {flagged} have gradients enabled but Mitsuba flags them "
                "non-differentiable, so no gradient would reach them: disable their gradients "
                "(see docs/limits.md for what pathgrad differentiates).")
    if finite:
        check_finite(grads)


#: parameters Mitsuba flags non-differentiable that pathgrad differentiates:
#: the pose and field of view of perspective and orthographic sensors
CAMERA_PARAMETERS = {"PerspectiveCamera": ("to_world", "x_fov"),
                     "OrthographicCamera": ("to_world",)}


def is_camera_parameter(params, key: str) -> bool:
    """``key`` of ``params`` is a sensor pose or field of view that pathgrad
    differentiates (see :data:`CAMERA_PARAMETERS`)."""
    node = params.properties[key][2] if key in getattr(params, "properties", {}) else None
    if not isinstance(node, mi.Sensor):
        return False
    return key.rsplit(".", 1)[-1] in CAMERA_PARAMETERS.get(node.class_name(), ())


def _pending_keys(params, pending: dict) -> list:
    """The keys of ``params`` written since the last ``params.update()``
    (``pending``: Mitsuba's dirty nodes and the names dirty in each)."""
    dirty = {id(node): names for (_, node), names in pending.items()}
    keys = [k for k, (_, _, node, _) in params.properties.items()
            if k.rsplit(".", 1)[-1] in dirty.get(id(node), ())]
    return sorted(keys) or sorted({k for ks in pending.values() for k in ks})


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
        raise ParameterError(NON_FINITE_PARAMETERS.format(bad))


def _flat(v):
    """The values of ``v`` as one flat array (tensors, nested vectors)."""
    v = dr.detach(v)
    if dr.is_tensor_v(v):
        return v.array
    return dr.ravel(v) if dr.depth_v(v) > 1 else v


def non_finite_flags(values: list) -> mi.UInt32:
    """One flag per value, 1 where it holds a NaN or an infinity: lazy
    scatter-reductions, evaluated with the next kernel launch (no host read
    here; ``dr.all(..., axis=None)`` would evaluate and wait per value)."""
    flags = dr.zeros(mi.UInt32, len(values))
    for i, v in enumerate(values):
        x = _flat(v)
        bad = dr.select(dr.isfinite(x), mi.UInt32(0), mi.UInt32(1))
        dr.scatter_reduce(dr.ReduceOp.Max, flags, bad, dr.full(mi.UInt32, i, dr.width(x)))
    dr.schedule(flags)
    return flags


def _non_finite(names: list, values: list) -> list:
    """The names whose values hold a NaN or an infinity (one host read)."""
    return [n for n, bad in zip(names, non_finite_flags(values).numpy()) if bad]


# --------------------------------------------------------------------------
# images and gradients
# --------------------------------------------------------------------------

NON_FINITE_GRADIENT_HINT = (
    "Mitsuba's derivative of a face normal overflows float32 for faces whose edge cross "
    "product is below about 1.4e-13 square scene units (edges under about 4e-7 units, e.g. "
    "a model in metres scaled to micrometres): express the scene in larger units. "
    "Otherwise please report it with the scene.")


def check_gradients(params, scene: mi.Scene) -> None:
    """After a backward pass: raise naming the gradient-enabled parameters
    whose gradients are not finite, or the scene parameters that are (one
    host read; a traversal only on failure; skipped while freezing)."""
    if params is None or freezing():
        return
    grads = {k: dr.grad(v) for k, v in attached(params).items()
             if dr.is_float_v(v) and dr.is_jit_v(v)}
    bad = _non_finite(list(grads), list(grads.values())) if grads else []
    if bad:
        _raise_non_finite(scene, f"the gradients of {bad}")


def check_gradient_image(img, scene: mi.Scene) -> None:
    """After a forward pass: as :func:`check_gradients`, for the gradient image."""
    if not freezing() and _non_finite([0], [img]):
        _raise_non_finite(scene, "the forward-mode gradient image")


def _raise_non_finite(scene, what: str):
    culprits = non_finite_scene_parameters(scene)
    if culprits:
        raise ParameterError(NON_FINITE_PARAMETERS.format(culprits))
    raise FloatingPointError(f"pathgrad: {what} contain(s) NaN or infinite values although "
                             "every scene parameter is finite. " + NON_FINITE_GRADIENT_HINT)


def render_flags(scene: mi.Scene, img: mi.TensorXf):
    """The lazy part of :func:`check_render`: flags for the image and each
    mesh's vertex positions (None while freezing). Queue it with the render,
    read it with :func:`report_render` when the caller syncs anyway."""
    if freezing():
        return None
    meshes = [s for s in scene.shapes() if isinstance(s, mi.Mesh)]
    return non_finite_flags([img] + [m.vertex_positions_buffer() for m in meshes])


def check_render(scene: mi.Scene, img: mi.TensorXf) -> None:
    """After a primal render: raise if the image or a mesh's vertex positions
    hold NaN or infinite values, naming the scene parameters responsible
    (found by a traversal, only when the cheap check fails). One host read."""
    report_render(scene, render_flags(scene, img))


def report_render(scene: mi.Scene, flags) -> None:
    """Read the flags of :func:`render_flags` and raise if one is set."""
    if flags is None or not any(flags.numpy()):
        return
    culprits = non_finite_scene_parameters(scene)
    if culprits:
        raise ParameterError(NON_FINITE_PARAMETERS.format(culprits))
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
