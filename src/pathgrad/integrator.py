"""The ``pathgrad`` integrator: Mitsuba's differentiable-integrator protocol
(``render``, ``render_forward``, ``render_backward``) on top of our estimators.

Registered with Mitsuba as ``pathgrad``::

    <integrator type="pathgrad">
        <integer name="max_depth" value="6"/>
    </integrator>

or ``{'type': 'pathgrad', 'max_depth': 6}`` in a scene dictionary.

Properties
----------
max_depth : int, default 6
    Longest path, in vertices counted from the camera (1: emitters seen
    directly; 2: direct illumination; -1: unbounded).
rr_depth : int, default 5
    Depth from which Russian roulette may stop paths.
boundary : bool, default true
    Add the boundary (visibility) term for meshes whose vertex positions are
    differentiable (the estimators in :data:`BOUNDARY_ESTIMATORS`).
shadow : bool, default true
    Within the boundary term, include shadow edges of direct illumination
    (see :mod:`pathgrad.boundary.shadow` and :mod:`pathgrad.boundary.shadow_delta`).
terminator : bool, default true
    Within the boundary term, include the view-side shading terminator of
    smooth-shaded meshes, the curve inside faces where the interpolated
    normal turns away from the camera (see :mod:`pathgrad.boundary.terminator`).
boundary_spp : float, default 0
    Boundary samples per pixel of the film, for every boundary estimator
    without a budget of its own. 0 means: the same as the spp of the
    differential pass.
primary_spp, shadow_spp, shadow_delta_spp, terminator_spp : float, default 0
    The budget of one boundary estimator (silhouettes seen by the camera,
    area-light and environment shadows, point-light shadows, shading
    terminators seen by the camera), in samples
    per film pixel; 0 means ``boundary_spp``. The primary and point-light
    estimators spread their samples over the discontinuities in view (the
    total is this times the number of pixels); the area-light estimator
    takes this many (rounded, at least one) per pixel at camera samples; the
    terminator estimator spreads its samples over the curves in view.
"""

from __future__ import annotations

import drjit as dr
import mitsuba as mi

from . import film as film_ops
from . import interior
from .boundary import primary, shadow, shadow_delta, terminator
from .boundary.edges import EdgeArrays
from .boundary.estimator import BoundaryContext
from .boundary.motion import Motion

NAME = "pathgrad"

#: the boundary estimators, in the order their terms are summed; a new one
#: is a module with a :class:`~pathgrad.boundary.estimator.BoundaryEstimator`
#: and an entry here
BOUNDARY_ESTIMATORS = (primary.PrimaryVisibility(), shadow.AreaShadow(),
                       shadow_delta.DeltaShadow(), terminator.ViewTerminator())

#: integrator properties holding one estimator's sample budget
BUDGET_PROPERTIES = tuple(f"{e.name}_spp" for e in BOUNDARY_ESTIMATORS)


def check_properties(max_depth, rr_depth, boundary_spp, **budgets) -> None:
    """Raise ValueError (saying what is allowed) for bad integrator settings."""
    if max_depth < 0 and max_depth != -1:
        raise ValueError(f"pathgrad: max_depth must be -1 (unbounded) or >= 0, got {max_depth}")
    if rr_depth <= 0:
        raise ValueError(f"pathgrad: rr_depth must be > 0, got {rr_depth}")
    for name, v in (("boundary_spp", boundary_spp), *budgets.items()):
        if not v >= 0:
            raise ValueError(f"pathgrad: {name} must be >= 0 (samples per pixel; 0: default), "
                             f"got {v}")


class _PathgradMixin:
    """Interior term by path replay (see :mod:`pathgrad.interior`).

    The concrete class derives from the active variant's
    ``mi.CppADIntegrator``; get it with :func:`integrator_class`.
    """

    def __init__(self, props: mi.Properties = None):
        props = props if props is not None else mi.Properties()
        mi.CppADIntegrator.__init__(self, props)
        max_depth = props.get("max_depth", 6)
        self.rr_depth = int(props.get("rr_depth", 5))
        self.boundary_spp = float(props.get("boundary_spp", 0.0))
        self.budgets = {k: float(props.get(k, 0.0)) for k in BUDGET_PROPERTIES}
        check_properties(max_depth, self.rr_depth, self.boundary_spp, **self.budgets)
        self.max_depth = 0xFFFFFFFF if max_depth == -1 else int(max_depth)
        self.boundary = bool(props.get("boundary", True))
        self.shadow = bool(props.get("shadow", True))
        self.terminator = bool(props.get("terminator", True))

    def to_string(self):
        return (f"PathgradIntegrator[max_depth={self.max_depth}, rr_depth={self.rr_depth}, "
                f"boundary={self.boundary}, shadow={self.shadow}, terminator={self.terminator}, "
                f"boundary_spp={self.boundary_spp}, "
                + "".join(f"{k}={v}, " for k, v in self.budgets.items() if v)
                + f"estimators=[{', '.join(e.name for e in self._estimators())}]]")

    def aov_names(self):
        return []

    # ------------------------------------------------------------- helpers
    def _trace(self, mode, scene, sampler, ray, δL=None, L_primal=None):
        return interior.trace(mode, scene, sampler, ray, mi.Bool(True),
                              self.max_depth, self.rr_depth, δL=δL, L_primal=L_primal)

    @staticmethod
    def _sensor(scene, sensor):
        if isinstance(sensor, int):
            sensors = scene.sensors()
            if not 0 <= sensor < len(sensors):
                raise IndexError(f"sensor index {sensor} out of range: the scene has "
                                 f"{len(sensors)} sensor(s)")
            return sensors[sensor]
        return sensor

    # ------------------------------------------------------------- protocol
    def render(self, scene: mi.Scene, sensor=0, seed: int = 0, spp: int = 0,
               develop: bool = True, evaluate: bool = True) -> mi.TensorXf:
        """Primal image (no derivatives tracked)."""
        if not develop:
            raise ValueError("pathgrad: develop=False is not supported")
        sensor = self._sensor(scene, sensor)
        film = sensor.film()
        with dr.suspend_grad():
            sampler, spp = film_ops.prepare_sampler(sensor, seed, spp)
            ray, weight, pos = film_ops.camera_rays(sensor, sampler)
            L, valid = self._trace(dr.ADMode.Primal, scene, sampler, ray)
            img = film_ops.splat(film, pos, L * weight, dr.select(valid, 1.0, 0.0),
                                 coalesce=spp >= 4)
            if evaluate:
                dr.eval(img)
            return img

    def _estimators(self) -> list:
        """The boundary estimators switched on by this integrator's flags."""
        if not self.boundary:
            return []
        return [e for e in BOUNDARY_ESTIMATORS if e.switch is None or getattr(self, e.switch)]

    def _budget(self, estimator, spp: int) -> float:
        """Samples per pixel for one estimator: its own setting, else
        ``boundary_spp``, else the differential pass's spp."""
        return self.budgets.get(f"{estimator.name}_spp", 0.0) or self.boundary_spp or spp

    def _boundary_image(self, scene, sensor, seed, spp):
        """Zero-valued image whose derivative is the boundary term, or None."""
        estimators = self._estimators()
        if not estimators:
            return None
        with dr.resume_grad():   # grad_enabled() reads False while suspended
            motion = Motion(scene)
            if not motion.any:
                return None
            # one edge set (and one camera), shared by the estimators
            static = any(e.static_edges for e in estimators)
            meshes = [m for m in scene.shapes() if isinstance(m, mi.Mesh)] if static \
                else motion.meshes
            ctx = BoundaryContext(scene, sensor, seed, self.max_depth, self.rr_depth, motion,
                                  EdgeArrays(meshes, motion.meshes))
            img = None
            for e in estimators:
                term = e.estimate(ctx, self._budget(e, spp))
                if term is not None:   # (summed inside resume_grad: a suspended sum detaches)
                    img = term if img is None else img + term
        return img

    def render_forward(self, scene: mi.Scene, params=None, sensor=0,
                       seed: int = 0, spp: int = 0, split: bool = False):
        """Gradient image: derivative of the image along the gradients set on
        the scene parameters (``dr.set_grad``). With ``split=True`` returns
        ``{'interior': ..., 'boundary': ...}`` instead of their sum."""
        sensor = self._sensor(scene, sensor)
        film = sensor.film()
        with dr.suspend_grad():
            sampler, spp = film_ops.prepare_sampler(sensor, seed, spp)
            ray, weight, pos = film_ops.camera_rays(sensor, sampler)
            L, _ = self._trace(dr.ADMode.Primal, scene, sampler.clone(), ray)
            δL, _ = self._trace(dr.ADMode.Forward, scene, sampler, ray, L_primal=L)
            img = film_ops.splat(film, pos, δL * weight, 0.0, coalesce=spp >= 4)
            dr.eval(img)
            bimg = self._boundary_image(scene, sensor, seed, spp)
            if bimg is not None:
                with dr.resume_grad():
                    bimg = dr.forward_to(bimg, flags=dr.ADFlag.Default | dr.ADFlag.AllowNoGrad)
                dr.eval(bimg)
            else:
                bimg = dr.zeros(mi.TensorXf, img.shape)
            if split:
                return {"interior": img, "boundary": bimg}
            return img + bimg

    def render_backward(self, scene: mi.Scene, params, grad_in: mi.TensorXf,
                        sensor=0, seed: int = 0, spp: int = 0) -> None:
        """Propagate the image adjoint ``grad_in`` into the scene parameters
        that have gradients enabled (accumulated with ``dr.grad``)."""
        sensor = self._sensor(scene, sensor)
        film = sensor.film()
        with dr.suspend_grad():
            sampler, spp = film_ops.prepare_sampler(sensor, seed, spp)
            ray, weight, pos = film_ops.camera_rays(sensor, sampler)
            δL = film_ops.sample_adjoint(film, pos, weight, grad_in, coalesce=spp >= 4)
            L, _ = self._trace(dr.ADMode.Primal, scene, sampler.clone(), ray)
            self._trace(dr.ADMode.Backward, scene, sampler, ray, δL=δL, L_primal=L)
            dr.eval()
            bimg = self._boundary_image(scene, sensor, seed, spp)
            if bimg is not None:
                with dr.resume_grad():
                    dr.backward_from(bimg * grad_in,
                                     flags=dr.ADFlag.Default | dr.ADFlag.AllowNoGrad)
                dr.eval()


_classes: dict[str, type] = {}


def integrator_class() -> type:
    """The integrator class for the active Mitsuba variant."""
    variant = mi.variant()
    if variant not in _classes:
        # nanobind classes take a single base: copy the methods over.
        ns = {k: v for k, v in vars(_PathgradMixin).items()
              if k not in ("__dict__", "__weakref__")}
        _classes[variant] = type("PathgradIntegrator", (mi.CppADIntegrator,), ns)
    return _classes[variant]


def register() -> None:
    """Register ``pathgrad`` with Mitsuba for the active variant (idempotent)."""
    variant = mi.variant()
    if variant in _classes:
        return
    cls = integrator_class()
    mi.register_integrator(NAME, lambda props: cls(props))
