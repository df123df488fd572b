"""The public entry points: scene loading, parameter selection and ``render``."""

from __future__ import annotations

import difflib
import os
import warnings
from typing import Iterable, Mapping

import drjit as dr
import mitsuba as mi

from ._variant import ensure_variant
from . import checks, poses
from .checks import ParameterError, attached, check_params, check_seed, check_spp
from .integrator import BUDGET_PROPERTIES, check_properties, integrator_class, with_tangents

__all__ = ["load_scene", "parameters", "render", "gradient_images", "make_integrator",
           "NothingAttachedWarning"]


# --------------------------------------------------------------------------
# Scenes and parameters
# --------------------------------------------------------------------------

def load_scene(scene: str | os.PathLike | Mapping | mi.Scene, **kwargs) -> mi.Scene:
    """Load a scene from an XML file, a Mitsuba scene dictionary, or pass a
    loaded scene through. ``kwargs`` are XML ``$parameters`` (e.g.
    ``res=64``) for files."""
    ensure_variant()
    if isinstance(scene, mi.Scene):
        return scene
    if isinstance(scene, Mapping):
        return mi.load_dict(dict(scene))
    path = os.fspath(scene)
    if not os.path.isfile(path):
        raise FileNotFoundError(
            f"Scene file '{path}' does not exist (working directory: {os.getcwd()}). "
            "Pass the path of a Mitsuba XML scene, a scene dict, or a loaded mi.Scene.")
    return mi.load_file(path, **{k: str(v) for k, v in kwargs.items()})


def _close_matches(key: str, keys: Iterable[str]) -> str:
    keys = list(keys)
    close = difflib.get_close_matches(key, keys, n=5, cutoff=0.5)
    if not close:  # fall back to keys sharing the last component
        tail = key.rsplit(".", 1)[-1]
        close = [k for k in keys if k.endswith(tail)][:5]
    return f" Did you mean one of {close}?" if close else ""


def _is_differentiable(params: mi.SceneParameters, key: str) -> bool:
    """Mitsuba can differentiate ``key`` (camera parameters, which pathgrad
    differentiates, are selected by name only: see :func:`parameters`)."""
    if params.flags(key) & mi.ParamFlags.NonDifferentiable:
        return False
    value = params[key]
    if poses.is_transform(value):     # a transform (shapes' to_world)
        value = value.matrix
    return dr.is_diff_v(value) and dr.is_float_v(value)


def parameters(scene: mi.Scene, keys: str | Iterable[str] | None = None,
               *, enable_grad: bool = True) -> mi.SceneParameters:
    """Select differentiable scene parameters by exact key.

    Parameters
    ----------
    scene : mi.Scene
    keys : str or list of str, optional
        Keys as listed by ``mi.traverse(scene)`` (e.g. ``'red.reflectance.value'``,
        ``'mesh.vertex_positions'``, ``'sensor.to_world'``). ``None`` keeps
        every differentiable key except transforms (shape and camera poses:
        name those).
    enable_grad : bool
        Enable gradient tracking on the selected parameters (and call
        ``params.update()`` so derived quantities such as vertex normals are
        attached to them).

    Returns a ``mi.SceneParameters`` holding only those keys. Note that a few
    plugins store a processed copy of what is written (``envmap``'s ``data``):
    for those, read gradients from the leaf you wrote (``v = ...;
    dr.enable_grad(v); params[key] = v; params.update(); ... dr.grad(v)``), or
    let an optimiser (``mi.ad.Adam``) hold the leaves, as it does anyway. Raises
    :class:`ParameterError` for an unknown key (listing close matches) or a key
    that cannot be differentiated (integer buffers, ...). A perspective or
    orthographic sensor's ``to_world`` and a perspective sensor's ``x_fov``
    are accepted although Mitsuba flags them non-differentiable: pathgrad
    differentiates them (interior and boundary terms). Write an attached
    pose as ``params[key] = mi.Transform4f().translate(t) @ base`` (``t``
    with gradients) and call ``params.update()``.
    """
    ensure_variant()
    params = mi.traverse(scene)
    if keys is None:
        # transforms (shape and sensor poses) are selected by name only
        keys = [k for k in params.keys() if _is_differentiable(params, k)
                and not poses.is_transform(params[k])]
        # reading every value marks some (e.g. transforms) as touched, and a
        # later update() would then look for keys that keep() dropped: select
        # from a fresh traversal instead
        params = mi.traverse(scene)
    elif isinstance(keys, str):
        keys = [keys]
    keys = list(keys)
    for key in keys:
        if key not in params:
            raise ParameterError(f"Unknown scene parameter '{key}'."
                                 + _close_matches(key, params.keys())
                                 + " List them all with mi.traverse(scene).keys() (differentiable ones: "
                                   "pathgrad.parameters(scene, enable_grad=False).keys()).")
        if not (_is_differentiable(params, key) or checks.is_camera_parameter(params, key)):
            raise ParameterError(
                f"Scene parameter '{key}' is not differentiable (it is "
                f"{type(params[key]).__name__}"
                + (", flagged NonDifferentiable by Mitsuba" if params.flags(key)
                   & mi.ParamFlags.NonDifferentiable else "")
                + "). Choose a floating-point parameter such as a reflectance, "
                  "a radiance, 'vertex_positions', a shape's 'to_world' or a "
                  "perspective or orthographic sensor's 'to_world' / 'x_fov'.")
    params.keep([f"^{_re_escape(k)}$" for k in keys])
    if enable_grad:
        for key in keys:
            enable_param_grad(params, key)
        params.update()
    return params


def enable_param_grad(params: mi.SceneParameters, key: str) -> None:
    """Enable gradients on ``params[key]`` and write it back. Some plugins
    (e.g. ``envmap``'s ``data``) hand out a copy, so enabling gradients on
    the returned value alone would not reach the scene."""
    value = params[key]
    dr.enable_grad(value)
    params[key] = value


def _re_escape(key: str) -> str:
    import re
    return re.escape(key)


# --------------------------------------------------------------------------
# Integrator selection
# --------------------------------------------------------------------------

_integrator_cache: dict = {}


def make_integrator(max_depth: int = 6, rr_depth: int = 5, boundary: bool = True,
                    boundary_spp: float = 0.0, shadow: bool = True,
                    terminator: bool = True, indirect: bool = True,
                    memory_budget_mb: float = 0.0, progress: bool = True, boundary_time_share: float = 0.5,
                    **budgets: float) -> mi.Integrator:
    """A ``pathgrad`` integrator (cached per settings); see
    :mod:`pathgrad.integrator` for the meaning of each property
    (``memory_budget_mb``: MB a render may use before it runs in passes, 0:
    half of the machine's memory; ``progress``: a bar over passes;
    ``boundary_time_share``: the default budgets' cap on the boundary
    terms' time, as a share of the interior term's, see :mod:`pathgrad.budgets`).
    ``budgets``: per-estimator sample budgets (``primary_spp``,
    ``analytic_spp``, ``shadow_spp``, ``analytic_shadow_spp``,
    ``shadow_delta_spp``, ``terminator_spp``, ``indirect_spp``, ``indirect_delta_spp``; samples per pixel, 0:
    ``boundary_spp``)."""
    ensure_variant()
    _check_budget_names(budgets)
    props = dict(max_depth=int(max_depth), rr_depth=int(rr_depth), boundary=bool(boundary),
                 boundary_spp=float(boundary_spp), shadow=bool(shadow),
                 terminator=bool(terminator), indirect=bool(indirect),
                 memory_budget_mb=float(memory_budget_mb),
                 progress=bool(progress), boundary_time_share=float(boundary_time_share),
                 **{k: float(v) for k, v in budgets.items()})
    # check here too: inside Mitsuba's plugin loader the error arrives wrapped
    check_properties(props["max_depth"], props["rr_depth"], props["boundary_spp"],
                     **{k: props[k] for k in budgets})
    key = (mi.variant(), tuple(sorted(props.items())))
    if key not in _integrator_cache:
        _integrator_cache[key] = mi.load_dict({"type": "pathgrad", **props})
    return _integrator_cache[key]


def _check_budget_names(budgets: Mapping) -> None:
    for k in budgets:
        if k not in BUDGET_PROPERTIES:
            raise TypeError(f"unknown integrator setting '{k}': the per-estimator sample "
                            f"budgets are {', '.join(BUDGET_PROPERTIES)}."
                            + _close_matches(k, BUDGET_PROPERTIES))


def _pick_integrator(scene, integrator, **overrides):
    """The integrator to use: ``integrator`` if given; else the scene's own
    ``pathgrad`` integrator with ``overrides`` (non-None values) applied;
    else a default ``pathgrad`` integrator."""
    overrides = {k: v for k, v in overrides.items() if v is not None}
    if integrator is not None:
        if overrides:
            raise ValueError(f"Pass either integrator= or {sorted(overrides)}, not both.")
        return integrator
    own = scene.integrator()
    if isinstance(own, integrator_class()):
        if not overrides:
            return own
        base = dict(max_depth=own.max_depth if own.max_depth != 0xFFFFFFFF else -1,
                    rr_depth=own.rr_depth, boundary=own.boundary,
                    boundary_spp=own.boundary_spp, shadow=own.shadow,
                    terminator=own.terminator, indirect=own.indirect,
                    memory_budget_mb=own.memory_budget_mb,
                    progress=own.progress, boundary_time_share=own.boundary_time_share,
                    **{k: v for k, v in own.budgets.items() if v})
    else:
        base = {}
    base.update(overrides)
    return make_integrator(**base)


# --------------------------------------------------------------------------
# render
# --------------------------------------------------------------------------

#: an exception of the last _RenderOp.eval, re-raised by render()
_pending_errors: list = []


class _RenderOp(dr.CustomOp):
    """Primal render without AD; derivatives routed to the integrator's
    ``render_forward`` / ``render_backward``."""

    def eval(self, scene, sensor, _detached_params, params, integrator, seeds, spps):
        self.scene, self.sensor, self.params = scene, sensor, params
        self.integrator, self.seeds, self.spps = integrator, seeds, spps
        try:
            with dr.suspend_grad():
                img = integrator.render(scene, sensor=sensor, seed=seeds[0], spp=spps[0],
                                        develop=True, evaluate=False, check=False)
                # read after the gradient pass, when it syncs anyway: a read
                # here would stall the tracing of that pass (measured: +9%
                # per step at 64x64)
                self.flags = checks.render_flags(scene, img)
                return img
        except Exception as e:
            # re-raised by render() once dr.custom has returned, so that the
            # caller gets this exception itself rather than Dr.Jit's wrapper
            _pending_errors.append(e)
            return dr.zeros(mi.TensorXf, (1, 1, 1))

    def forward(self):
        grads = self.grad_in("_detached_params")
        self.set_grad_out(with_tangents(
            self.params, grads, lambda: self.integrator.render_forward(
                self.scene, self.params, self.sensor, self.seeds[1], self.spps[1],
                tangents_ready=True)))
        checks.report_render(self.scene, self.flags)

    def backward(self):
        self.integrator.render_backward(self.scene, self.params, self.grad_out(),
                                        self.sensor, self.seeds[1], self.spps[1])
        checks.report_render(self.scene, self.flags)

    def name(self):
        return "pathgrad.render"


def gradient_images(scene: mi.Scene, params: mi.SceneParameters, tangents: Mapping, *,
                    spp: int = 16, seed: int = 0, sensor: int | mi.Sensor = 0,
                    integrator: mi.Integrator | None = None, **integrator_props) -> dict:
    """Forward-mode gradient images, split into their interior and boundary terms.

    Parameters
    ----------
    scene, params
        As for :func:`render`.
    tangents : dict
        ``{key: direction}``: the derivative is taken along these directions
        (each of the parameter's type and shape, e.g. ``mi.Float`` of
        ``3 x vertex count`` for ``*.vertex_positions``).
    spp, seed, sensor
        Samples per pixel and seed of the differential pass, sensor.
    integrator_props
        ``max_depth``, ``boundary_spp``, ... as for :func:`render`.

    Returns ``{'interior': T, 'boundary': T, 'total': T}``, each a
    ``mi.TensorXf`` of shape (H, W, C), in image units per unit of the
    parameters. None of Mitsuba's integrators offers this split; it shows
    which term a gradient (or its noise) comes from.
    """
    ensure_variant()
    scene = load_scene(scene)
    spp = check_spp(spp, "spp")
    integ = _pick_integrator(scene, integrator, **integrator_props)
    for key in tangents:
        if key not in params:
            raise ParameterError(f"tangent given for '{key}', which is not in params."
                                 + _close_matches(key, params.keys()))
    terms = with_tangents(params, tangents, lambda: integ.render_forward(
        scene, params, sensor, seed, spp, split=True, tangents_ready=True))
    terms["total"] = terms["interior"] + terms["boundary"]
    return terms


def _derive_seed(seed: int) -> int:
    """A seed for the differential phase, decorrelated from the primal one
    (correlated primal and gradient noise biases losses like L2). A
    ``UInt32`` seed (frozen steps) gives a ``UInt32``: the same value, its
    arithmetic wraps modulo 2^32 too."""
    if dr.is_jit_v(seed):
        return seed * 0x9E3779B1 + 0x7F4A7C15
    return (int(seed) * 0x9E3779B1 + 0x7F4A7C15) & 0xFFFFFFFF


def render(scene: mi.Scene | str | Mapping,
           params: mi.SceneParameters | None = None,
           *,
           spp: int = 16,
           spp_grad: int | None = None,
           seed: int = 0,
           seed_grad: int | None = None,
           sensor: int | mi.Sensor = 0,
           max_depth: int | None = None,
           rr_depth: int | None = None,
           boundary: bool | None = None,
           boundary_spp: float | None = None,
           shadow: bool | None = None,
           terminator: bool | None = None,
           indirect: bool | None = None,
           memory_budget_mb: float | None = None,
           integrator: mi.Integrator | None = None,
           **budgets: float) -> mi.TensorXf:
    """Render ``scene`` differentiably.

    Parameters
    ----------
    scene : mi.Scene, path or dict
        The scene (see :func:`load_scene`).
    params : mi.SceneParameters, optional
        Parameters that may receive gradients: from :func:`parameters` or
        ``mi.traverse(scene)`` with ``dr.enable_grad`` on the ones of interest.
        Without it the result is a plain image with no AD graph.
    spp, spp_grad : int
        Samples per pixel of the primal image and of the differential pass
        (``spp_grad`` defaults to ``spp``).
    seed, seed_grad : int
        Seeds of the primal and differential passes. ``seed_grad`` defaults to
        a value derived from ``seed`` so that primal and gradient noise are
        independent; vary ``seed`` between optimisation steps.
    sensor : int or mi.Sensor
        Which sensor to render from.
    max_depth, rr_depth : int, optional
        Path length and Russian-roulette start (default 6 and 5, or the
        scene's own ``pathgrad`` integrator settings).
    boundary : bool, optional
        Include the boundary (visibility) term of meshes with differentiable
        vertex positions (default True).
    boundary_spp : float, optional
        Boundary samples per film pixel for every boundary estimator
        (default: the noise-balanced budget of :mod:`pathgrad.budgets`, from
        a pilot run once per scene and parameter set; at most half the
        interior term's time). Most estimators spread them over the
        discontinuities in view, so most pixels get none.
    shadow : bool, optional
        Include the shadow edges of direct illumination in the boundary term
        (default True).
    terminator : bool, optional
        Include the view-side shading terminators of smooth-shaded meshes in
        the boundary term (default True).
    indirect : bool, optional
        Include silhouettes and delta lights' shadow curves seen from the
        vertices of camera paths (indirect shadows, reflections in glossy
        surfaces, interreflection) in the boundary term (default True;
        needs ``max_depth`` >= 3).
    memory_budget_mb : float, optional
        Memory the render may use, in MB (default: half of the machine's
        memory). Larger renders run in passes with different seeds,
        accumulated, in primal, forward and reverse mode.
    integrator : mi.Integrator, optional
        A ``pathgrad`` integrator to use instead (e.g. from :func:`make_integrator`).
    primary_spp, analytic_spp, shadow_spp, analytic_shadow_spp, shadow_delta_spp, terminator_spp, indirect_spp, indirect_delta_spp : float, optional
        The sample budget of one boundary estimator (samples per film pixel;
        default ``boundary_spp``); see :mod:`pathgrad.integrator`.

    Returns
    -------
    mi.TensorXf of shape (height, width, channels): linear radiance (RGB, plus
    alpha if the film has it). ``dr.backward`` on a loss of it accumulates
    parameter gradients; ``dr.forward`` from a parameter (or
    ``dr.forward_to(image)``) gives the gradient image.
    """
    ensure_variant()
    scene = load_scene(scene)
    spp = check_spp(spp, "spp")
    spp_grad = check_spp(spp if spp_grad is None else spp_grad, "spp_grad")
    check_seed(seed, "seed")
    seed_grad = _derive_seed(seed) if seed_grad is None else seed_grad
    check_seed(seed_grad, "seed_grad")
    integ = _pick_integrator(scene, integrator, max_depth=max_depth, rr_depth=rr_depth,
                             boundary=boundary, boundary_spp=boundary_spp, shadow=shadow,
                             terminator=terminator, indirect=indirect,
                             memory_budget_mb=memory_budget_mb,
                             **budgets)

    if params is None:
        return integ.render(scene, sensor=sensor, seed=seed, spp=spp)
    if not isinstance(params, mi.SceneParameters):
        raise TypeError("params must be a mi.SceneParameters (from pathgrad.parameters "
                        f"or mi.traverse), got {type(params).__name__}")
    check_params(params)
    grads = attached(params)
    if not grads:
        # a warning, not an error: one function may render with and without
        # gradients (e.g. a torch wrapper called under torch.no_grad())
        warnings.warn(_nothing_attached(params), NothingAttachedWarning, stacklevel=2)
        return integ.render(scene, sensor=sensor, seed=seed, spp=spp)
    # the pilot of the default budgets, on the caller's parameters and
    # before the AD graph of this render exists (see pathgrad.budgets)
    integ.prepare_budgets(scene, sensor, params)
    _pending_errors.clear()
    img = dr.custom(_RenderOp, scene, sensor, grads, params, integ,
                    (seed, seed_grad), (spp, spp_grad))
    if _pending_errors:
        raise _pending_errors.pop()
    return img


def _nothing_attached(params: mi.SceneParameters) -> str:
    keys = list(params.keys())
    shown = keys if len(keys) <= 8 else keys[:8] + [f"... ({len(keys)} keys)"]
    return (f"render(params=...) was given {len(keys)} parameter(s) {shown}, none with "
            "gradients enabled, so no gradient can reach the scene: the image is a plain "
            "one (dr.backward on it will fail). Select them with "
            "pathgrad.parameters(scene, keys) (which enables gradients and calls "
            "params.update()), or call dr.enable_grad(v); params[key] = v; params.update(). "
            "Integer buffers such as '*.faces' cannot carry gradients (Dr.Jit ignores "
            "enable_grad on them); to render without gradients, omit params.")


class NothingAttachedWarning(UserWarning):
    """``render`` was given ``params`` of which none has gradients enabled."""
