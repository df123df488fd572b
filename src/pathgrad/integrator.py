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
indirect : bool, default true
    Within the boundary term, include silhouettes seen from the vertices of
    camera paths, with the radiance behind them traced to the end of the
    path (indirect shadows, occluders seen in glossy reflections, objects
    inside closed rooms; see :mod:`pathgrad.boundary.indirect`), and the
    hard shadows of point, spot and directional lights seen from those
    vertices (a shadow seen in a glossy floor; see
    :mod:`pathgrad.boundary.indirect_delta`). Needs ``max_depth`` >= 3.
boundary_spp : float, default 0
    Boundary samples per pixel of the film, for every boundary estimator
    without a budget of its own. 0 means: the default budget, the
    cost-optimal split of samples between the interior and each boundary
    term from a pilot estimate of their variances (see :mod:`pathgrad.budgets`).
primary_spp, analytic_spp, shadow_spp, analytic_shadow_spp, shadow_delta_spp, terminator_spp, indirect_spp, indirect_delta_spp : float, default 0
    The budget of one boundary estimator (silhouettes seen by the camera,
    outlines of analytic shapes seen by the camera, area-light and
    environment shadows, analytic shapes' shadows, point-light shadows,
    shading terminators seen by the camera, silhouettes and delta-light
    shadows seen from path vertices), in samples
    per film pixel; 0 means ``boundary_spp``. The primary, analytic and
    point-light estimators spread their samples over the discontinuities in
    view (the total is this times the number of pixels); the area-light and
    analytic-shadow estimators take this many per pixel at film positions
    stratified over the film (fewer than one per pixel allowed); the
    terminator estimator spreads its samples over the curves in view.
boundary_time_share : float, default 0.5
    The default budgets give the boundary terms together at most this share
    of the interior term's time (see :mod:`pathgrad.budgets`).
memory_budget_mb : float, default 0
    Memory a render may use, in MB (0: half of the machine's RAM, or of the
    GPU's memory for CUDA variants). A render whose wavefronts (camera
    samples, boundary samples) would exceed it, or exceed Dr.Jit's 2^32
    lanes, runs in passes with different seeds that are accumulated, in
    primal, forward and reverse mode (see :mod:`pathgrad.passes`).
progress : bool, default true
    Show a progress bar when a render runs in several passes.
"""

from __future__ import annotations

import contextlib

import drjit as dr
import mitsuba as mi
import numpy as np

from . import budgets as budget_rule
from . import checks, interior, passes, poses
from . import film as film_ops
from .boundary import (analytic, analytic_shadow, indirect, indirect_delta, primary, shadow,
                       shadow_delta, terminator)
from .boundary.edges import EdgeArrays
from .boundary.estimator import BoundaryContext
from .boundary.motion import Motion, camera_moves

NAME = "pathgrad"

#: the boundary estimators, in the order their terms are summed; a new one
#: is a module with a :class:`~pathgrad.boundary.estimator.BoundaryEstimator`
#: and an entry here
BOUNDARY_ESTIMATORS = (primary.PrimaryVisibility(), analytic.AnalyticOutlines(),
                       shadow.AreaShadow(), analytic_shadow.AnalyticShadow(),
                       shadow_delta.DeltaShadow(), terminator.ViewTerminator(),
                       indirect.IndirectVisibility(), indirect_delta.IndirectDeltaShadow())

#: peak bytes per camera-sample lane of the interior term, by mode, and per
#: boundary sample. Measured (LLVM, docs/performance.md "Memory"): the
#: interior's peak does not grow from 4.2 M to 16.7 M lanes in any mode, as
#: every wavefront runs fused in a few kernels (< 0.1 B/lane; 1 B/lane is a
#: margin that keeps the budget meaningful should one be materialised). The
#: boundary samples are evaluated between their sample and splat phases
#: (one sampling kernel instead of one per use): measured 168 B per sample
#: for the area-light shadow estimator, 96 for point-light shadows, 71 for
#: primary visibility (1 M samples, 128x128)
CAMERA_BYTES_PER_LANE = {"primal": 1.0, "forward": 1.0, "backward": 1.0}
BOUNDARY_BYTES_PER_LANE = 256.0

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
        self.indirect = bool(props.get("indirect", True))
        self.memory_budget_mb = float(props.get("memory_budget_mb", 0.0))
        if not self.memory_budget_mb >= 0:
            raise ValueError("pathgrad: memory_budget_mb must be >= 0 (MB; 0: half of the "
                             f"machine's memory), got {self.memory_budget_mb}")
        self.progress = bool(props.get("progress", True))
        self.boundary_time_share = float(props.get("boundary_time_share",
                                                   budget_rule.MAX_TIME_SHARE))
        if not self.boundary_time_share > 0:
            raise ValueError("pathgrad: boundary_time_share must be > 0 (the boundary terms' "
                             "largest share of the interior term's time), got "
                             f"{self.boundary_time_share}")
        #: default budgets, n_B / n_I per estimator, of the current call, and
        #: the pilots they came from (see :mod:`pathgrad.budgets`)
        self._ratios, self._pilots = {}, {}

    def to_string(self):
        return (f"PathgradIntegrator[max_depth={self.max_depth}, rr_depth={self.rr_depth}, "
                f"boundary={self.boundary}, shadow={self.shadow}, terminator={self.terminator}, indirect={self.indirect}, "
                f"boundary_spp={self.boundary_spp}, boundary_time_share={self.boundary_time_share}, "
                f"memory_budget_mb={self.memory_budget_mb}, "
                + "".join(f"{k}={v}, " for k, v in self.budgets.items() if v)
                + f"estimators=[{', '.join(e.name for e in self._estimators())}]]")

    def aov_names(self):
        return []

    # ------------------------------------------------------------- helpers
    def _trace(self, mode, scene, sampler, ray, δL=None, L_primal=None, ray_camera=None):
        return interior.trace(mode, scene, sampler, ray, mi.Bool(True),
                              self.max_depth, self.rr_depth, δL=δL, L_primal=L_primal,
                              ray_camera=ray_camera)

    @staticmethod
    def _camera_rays(sensor, sampler):
        """Camera rays, their weights and splat positions (detached), and the
        rays attached to the sensor's pose and fov when those carry
        gradients (else None)."""
        if not camera_moves(sensor):
            return (*film_ops.camera_rays(sensor, sampler), None)
        with dr.resume_grad():
            ray, weight, pos = film_ops.camera_rays(sensor, sampler)
        return mi.Ray3f(dr.detach(ray)), dr.detach(weight), pos, ray

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
               develop: bool = True, evaluate: bool = True,
               check: bool = True) -> mi.TensorXf:
        """Primal image (no derivatives tracked). Raises if the image or a
        mesh's vertex positions are not finite, naming the scene parameters
        responsible (one reduction and host read; ``evaluate`` is implied).
        ``check=False`` leaves that to the caller
        (:func:`pathgrad.checks.render_flags`)."""
        if not develop:
            raise ValueError("pathgrad: develop=False is not supported")
        sensor, spp = self._check_call(scene, sensor, seed, spp)
        with dr.suspend_grad():
            img = self._in_passes(sensor, seed, spp, "primal", lambda s, n, _: self._render_pass(
                scene, sensor, s, n))
        if check:
            checks.check_render(scene, img)
        return img

    def render_forward(self, scene: mi.Scene, params=None, sensor=0,
                       seed: int = 0, spp: int = 0, split: bool = False,
                       tangents_ready: bool = False):
        """Gradient image: derivative of the image along the gradients set on
        the scene parameters (``dr.set_grad``). With ``split=True`` returns
        ``{'interior': ..., 'boundary': ...}`` instead of their sum.

        Unless ``tangents_ready`` (the caller has run :func:`with_tangents`,
        as :func:`pathgrad.render` does), the tangents are first re-rooted on
        fresh leaves: ``mi.render``'s forward mode hands them over on the
        parameters, upstream of derived buffers (vertex normals, the sensor's
        sample-to-camera transform) that would otherwise miss them."""
        if not tangents_ready and params is not None:
            tangents = {k: dr.grad(v) for k, v in checks.attached(params).items()}
            self.prepare_budgets(scene, sensor, params)
            if tangents:
                return with_tangents(params, tangents, lambda: self.render_forward(
                    scene, params, sensor, seed, spp, split, tangents_ready=True))
        sensor, spp = self._check_call(scene, sensor, seed, spp, params)
        with dr.suspend_grad():
            terms = self._in_passes(sensor, seed, spp, "forward", lambda s, n, f: self._forward_pass(
                scene, sensor, s, n, f))
        total = terms["interior"] + terms["boundary"]
        checks.check_gradient_image(total, scene)
        return terms if split else total

    def render_backward(self, scene: mi.Scene, params, grad_in: mi.TensorXf,
                        sensor=0, seed: int = 0, spp: int = 0) -> None:
        """Propagate the image adjoint ``grad_in`` into the scene parameters
        that have gradients enabled (accumulated with ``dr.grad``). Raises
        if those gradients are not finite (non-finite parameters were
        reported by the primal render that precedes it)."""
        sensor, spp = self._check_call(scene, sensor, seed, spp, params, finite=False)
        # (no new pilot here: inside a reverse traversal, writing the
        # parameters back makes new AD nodes the traversal never reaches)
        self.prepare_budgets(scene, sensor, params, run_pilot=False)
        with dr.suspend_grad():
            self._in_passes(sensor, seed, spp, "backward", lambda s, n, f: self._backward_pass(
                scene, sensor, grad_in if f == 1 else grad_in * f, s, n, f))
        checks.check_gradients(params, scene)

    # ------------------------------------------------------------- one pass
    def _render_pass(self, scene, sensor, seed, spp):
        film = sensor.film()
        sampler, spp = film_ops.prepare_sampler(sensor, seed, spp)
        ray, weight, pos = film_ops.camera_rays(sensor, sampler)
        L, valid = self._trace(dr.ADMode.Primal, scene, sampler, ray)
        img = film_ops.splat(film, pos, L * weight, dr.select(valid, 1.0, 0.0),
                             coalesce=spp >= 4)
        dr.eval(img)
        return img

    def _forward_pass(self, scene, sensor, seed, spp, fraction):
        film = sensor.film()
        sampler, spp = film_ops.prepare_sampler(sensor, seed, spp)
        ray, weight, pos, ray_cam = self._camera_rays(sensor, sampler)
        cam = interior.CameraRay(ray_cam, dr.ADMode.Forward) if ray_cam is not None else None
        L, _ = self._trace(dr.ADMode.Primal, scene, sampler.clone(), ray)
        δL, _ = self._trace(dr.ADMode.Forward, scene, sampler, ray, L_primal=L, ray_camera=cam)
        img = film_ops.splat(film, pos, δL * weight, 0.0, coalesce=spp >= 4)
        dr.eval(img)
        bimg = self._boundary_image(scene, sensor, seed, spp, fraction)
        if bimg is not None:
            with dr.resume_grad():
                # (keep the tangents of the inputs: a later pass reads them again)
                bimg = dr.forward_to(bimg, flags=dr.ADFlag.ClearEdges | dr.ADFlag.ClearInterior
                                     | dr.ADFlag.AllowNoGrad)
            dr.eval(bimg)
        else:
            bimg = dr.zeros(mi.TensorXf, img.shape)
        return {"interior": img, "boundary": bimg}

    def _backward_pass(self, scene, sensor, grad_in, seed, spp, fraction,
                       interior_term=True, budgets=None):
        """One reverse-mode pass: the interior term (unless not
        ``interior_term``) and the boundary terms (``budgets``: samples per
        pixel by estimator name, default :meth:`_budget` for each), their
        adjoints propagated into the parameters."""
        cam = None
        if interior_term:
            film = sensor.film()
            sampler, spp = film_ops.prepare_sampler(sensor, seed, spp)
            ray, weight, pos, ray_cam = self._camera_rays(sensor, sampler)
            cam = interior.CameraRay(ray_cam, dr.ADMode.Backward) if ray_cam is not None else None
            δL = film_ops.sample_adjoint(film, pos, weight, grad_in, coalesce=spp >= 4)
            L, _ = self._trace(dr.ADMode.Primal, scene, sampler.clone(), ray)
            self._trace(dr.ADMode.Backward, scene, sampler, ray, δL=δL, L_primal=L, ray_camera=cam)
            dr.eval()
        bimg = self._boundary_image(scene, sensor, seed, spp, fraction, budgets)
        with dr.resume_grad():
            # one traversal for the camera's adjoint from the interior term
            # and the boundary terms (see interior.CameraRay)
            out = [dr.sum(bimg * grad_in, axis=None)] if bimg is not None else []
            out += [cam.adjoint()] if cam is not None else []
            if out:
                dr.backward_from(out[0] if len(out) == 1 else out[0] + out[1],
                                 flags=dr.ADFlag.Default | dr.ADFlag.AllowNoGrad)
        if out:
            dr.eval()

    # ------------------------------------------------------------- boundary
    def _estimators(self) -> list:
        """The boundary estimators switched on by this integrator's flags."""
        if not self.boundary:
            return []
        return [e for e in BOUNDARY_ESTIMATORS if e.switch is None or getattr(self, e.switch)]

    def _own_budget(self, estimator) -> float:
        """The estimator's budget set by the user (its own, else
        ``boundary_spp``), 0 if none."""
        return self.budgets.get(f"{estimator.name}_spp", 0.0) or self.boundary_spp

    def _budget(self, estimator, spp: int, fraction: float = 1.0) -> float:
        """Samples per pixel for one estimator in a pass of ``spp`` samples
        that is ``fraction`` of the render: the user's setting (times
        ``fraction``), else the default of :mod:`pathgrad.budgets` (the
        pilot's ratio times ``spp``, at least ``MIN_SPP``; ``spp`` itself
        before any pilot ran)."""
        own = self._own_budget(estimator)
        if own:
            return own * fraction
        ratio = self._ratios.get(estimator.name)
        if ratio is None:
            return spp
        return max(ratio * spp, budget_rule.MIN_SPP * fraction)

    def prepare_budgets(self, scene, sensor, params, run_pilot: bool = True) -> None:
        """Set the default budgets of the next gradient render from the pilot
        of :mod:`pathgrad.budgets`, run once per scene, sensor and set of
        differentiable parameters (cached; :meth:`reset_budgets` forgets
        them). Call it before the render, outside any AD traversal:
        :func:`pathgrad.render` and ``render_forward`` do; ``render_backward``
        only reads the cache (``run_pilot=False``: without a cached pilot the
        budgets are the spp of the pass), so a loop of ``mi.render`` in
        reverse mode gets the default budgets after one call of this method
        (or of a forward-mode render)."""
        sensor = self._sensor(scene, sensor)
        todo = [e for e in self._estimators() if not self._own_budget(e)]
        attached = checks.attached(params) if params is not None else {}
        keys = sorted(attached)
        # transforms and camera parameters are not swapped for the pilot's
        # copies (a transform rebuilt from a copy of its matrix is a new AD
        # node with its own inverse; not verified): those renders keep
        # budgets = spp
        movable = not any(poses.is_transform(v) or checks.is_camera_parameter(params, k)
                          for k, v in attached.items())
        if not todo or not keys or not movable:
            self._ratios = {}
            return
        if not Motion(scene, sensor).any:
            # nothing moves (materials, lights): the boundary terms are zero,
            # which is what a pilot would find, at no cost (a multi-view
            # problem would otherwise run one per view)
            self._ratios = {e.name: 0.0 for e in todo}
            return
        # a frozen function's recording cannot read the pilot's gradients (the
        # pilot runs before, in the unfrozen step: pathgrad.views)
        run_pilot = run_pilot and not checks.freezing()
        key = (id(scene), id(sensor), tuple(keys), tuple(e.name for e in todo))
        hit = self._pilots.get(key)
        if (hit is None or hit[0] is not sensor) and not run_pilot:
            self._ratios = {}
            return
        if hit is None or hit[0] is not sensor:
            hit = self._pilots[key] = (sensor, self._pilot(scene, sensor, params, keys, todo))
            while len(self._pilots) > _MAX_PILOTS:
                self._pilots.pop(next(iter(self._pilots)))
        self._ratios = hit[1]

    def sample_budgets(self, scene: mi.Scene, params, spp: int, sensor=0) -> dict:
        """Samples per pixel each boundary estimator draws in a gradient
        render of ``spp`` samples per pixel (name -> float): the user's
        settings, else the default of :mod:`pathgrad.budgets` (running its
        pilot if it has not run yet for this scene, sensor and parameters)."""
        self.prepare_budgets(scene, sensor, params)
        return {e.name: self._budget(e, spp) for e in self._estimators()}

    def reset_budgets(self) -> None:
        """Forget the cached pilots: the next gradient render runs new ones
        (e.g. after the scene changed a lot during an optimisation)."""
        self._pilots.clear()

    def _pilot(self, scene, sensor, params, keys, estimators) -> dict:
        """Two independent low-sample gradients of the interior term and of
        each boundary term, into fresh copies of the parameters (the
        caller's gradients are not touched), for a fixed pseudo-random image
        adjoint; returns :func:`pathgrad.budgets.allocate` of their variances."""
        film = sensor.film()
        shape = (film.crop_size()[1], film.crop_size()[0], 3 + film_ops.has_alpha(film))
        rng = np.random.default_rng(PILOT_ADJOINT_SEED)
        adjoint = mi.TensorXf(rng.choice([-1.0, 1.0], size=shape).astype(np.float32))
        spp = budget_rule.PILOT_SPP

        def gradient(leaves, **kw):
            grads = []
            for seed in PILOT_SEEDS:
                self._backward_pass(scene, sensor, adjoint, seed, spp, 1.0, **kw)
                with dr.resume_grad():   # (suspended, dr.grad reads zero)
                    grads.append(np.concatenate([np.array(dr.ravel(dr.grad(v)), np.float64)
                                                 .ravel() for v in leaves]))
                    for v in leaves:
                        dr.clear_grad(v)
            return budget_rule.unit_variance(*grads, spp)

        def run(leaves):
            with dr.suspend_grad():   # as in render_backward
                var_i = gradient(leaves, budgets={})
                var_b = {e.name: gradient(leaves, interior_term=False, budgets={e.name: spp})
                         for e in estimators}
            return budget_rule.allocate(var_i, var_b, self.boundary_time_share)
        return with_fresh_leaves(params, keys, run)

    def _boundary_image(self, scene, sensor, seed, spp, fraction=1.0, budgets=None):
        """Zero-valued image whose derivative is the boundary term, or None.
        ``budgets``: samples per pixel by estimator name (only those run),
        default :meth:`_budget` for every estimator."""
        estimators = self._estimators()
        if budgets is not None:
            estimators = [e for e in estimators if e.name in budgets]
        if not estimators:
            return None
        with dr.resume_grad():   # grad_enabled() reads False while suspended
            motion = Motion(scene, sensor)
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
                spp_e = budgets[e.name] if budgets is not None else self._budget(e, spp, fraction)
                term = e.estimate(ctx, spp_e)
                if term is not None:   # (summed inside resume_grad: a suspended sum detaches)
                    img = term if img is None else img + term
        return img


    # ------------------------------------------------------------- passes
    def _check_call(self, scene, sensor, seed, spp, params=None, finite=True):
        """Validate one protocol call before any kernel runs (``finite``:
        also the values of gradient-enabled parameters, one host read);
        returns the sensor and its samples per pixel."""
        if not isinstance(scene, mi.Scene):
            raise TypeError(f"pathgrad: scene must be a mi.Scene, got {type(scene).__name__}")
        sensor = self._sensor(scene, sensor)
        checks.check_seed(seed)
        spp = checks.effective_spp(sensor, spp)
        checks.check_params(params, finite)
        return sensor, spp

    def _wavefronts(self, sensor, spp: int, mode: str) -> list:
        """``(name, lanes per unit spp, bytes per lane)`` of each wavefront of
        a render of ``spp`` samples per pixel (see :mod:`pathgrad.passes`)."""
        film = sensor.film()
        sampled = float(dr.prod(film_ops.sampled_size(film)))
        out = [("camera", sampled, CAMERA_BYTES_PER_LANE[mode])]
        if mode != "primal":
            for e in self._estimators():
                out.append((e.name, sampled * self._budget(e, spp) / spp,
                            BOUNDARY_BYTES_PER_LANE))
        return out

    def pass_plan(self, sensor: mi.Sensor, spp: int, seed=0, mode: str = "primal") -> list:
        """How a render of ``spp`` samples per pixel from ``sensor`` is split:
        ``[(spp_i, seed_i), ...]`` (one entry when it fits in one pass).
        ``mode``: ``'primal'``, ``'forward'`` or ``'backward'``. Raises
        ValueError, with what it would need, when not even one sample per
        pixel fits."""
        budget = self.memory_budget_mb * 2**20 if self.memory_budget_mb else \
            passes.default_budget_bytes(mi.variant().startswith("cuda"))
        return passes.plan(spp, seed, self._wavefronts(sensor, spp, mode), budget)

    def _in_passes(self, sensor, seed, spp: int, mode: str, one_pass):
        """Run ``one_pass(seed_i, spp_i, spp_i / spp)`` for each pass of the
        plan and sum the results weighted by ``spp_i / spp`` (images, dicts
        of images, or None); a progress bar when there are several."""
        plan = self.pass_plan(sensor, spp, seed, mode)
        if len(plan) == 1:
            return one_pass(seed, spp, 1.0)
        total = None
        bar = _progress(spp, mode) if self.progress else None
        for spp_i, seed_i in plan:
            f = spp_i / spp
            part = one_pass(seed_i, spp_i, f)
            if part is not None:
                part = {k: v * f for k, v in part.items()} if isinstance(part, dict) else part * f
                total = part if total is None else _add(total, part)
                dr.eval(total)
            if bar is not None:
                bar.update(spp_i)
        if bar is not None:
            bar.close()
        return total


def with_tangents(params, tangents: Mapping, fn):
    """Run ``fn`` (a forward-mode render) with the scene re-derived from fresh
    leaf copies of ``params[key]`` that carry ``tangents[key]``, then restore.

    The scene's parameters may feed derived buffers (vertex normals are
    recomputed from positions by ``params.update()``), linked by AD edges that
    lie outside the isolated scope of a custom op or a symbolic loop: forward
    propagation would fail on them or miss them. Fresh leaves and one
    explicit forward traversal (keeping the interior gradients) avoid both.
    The sensor's pose and field of view feed Mitsuba's derived camera
    transforms the same way."""
    values, leaves = {}, []
    for key, g in tangents.items():
        value = params[key]
        if poses.is_transform(g):
            # a transform: the leaf is its matrix (the transform derives
            # its inverse from it, an edge the traversal below clears)
            leaf = type(g.matrix)(dr.detach(value.matrix))
            dr.enable_grad(leaf)
            dr.set_grad(leaf, g.matrix)
            values[key] = type(value)(leaf)
        else:
            leaf = type(value)(dr.detach(value))
            dr.enable_grad(leaf)
            dr.set_grad(leaf, g)
            values[key] = leaf
        leaves.append(leaf)
    with swapped(params, values):
        dr.enqueue(dr.ADMode.Forward, *leaves)
        dr.traverse(dr.ADMode.Forward, dr.ADFlag.ClearEdges)
        return fn()


def with_fresh_leaves(params, keys, fn):
    """Run ``fn(leaves)`` with the entries ``keys`` of ``params`` replaced by
    fresh gradient-enabled copies (the list ``leaves``) and the scene
    updated, then restore. Gradients that ``fn`` propagates land on the
    copies, not on the caller's parameters. Call it outside any AD
    traversal (restoring makes new AD nodes a running traversal misses)."""
    values, leaves = {}, []
    for key in keys:
        value = params[key]
        flat = value.array if isinstance(value, mi.TensorXf) else value
        leaf = dr.gather(type(flat), dr.detach(flat), dr.arange(mi.UInt32, dr.width(flat)))
        dr.enable_grad(leaf)
        values[key] = mi.TensorXf(leaf, value.shape) if flat is not value else leaf
        leaves.append(leaf)
    with swapped(params, values):
        return fn(leaves)


@contextlib.contextmanager
def swapped(params, values: Mapping):
    """``params[key] = values[key]`` (and ``params.update()``) for the
    duration of the block, then the original values back.

    ``params[key]`` is a live view of the object's member: the originals are
    held as copies (``type(v)(v)``, the same JIT and AD variables), or the
    write would overwrite them too and the "restore" would keep the swapped
    value (measured: after a forward-mode render the scene kept the tangent
    leaf, and a later reverse render gave the caller's variables a zero
    gradient)."""
    originals = {}
    try:
        for key, value in values.items():
            current = params[key]
            originals[key] = type(current)(current)
            params[key] = value
        params.update()
        yield
    finally:
        for key, value in originals.items():
            params[key] = value
        params.update()


#: fixed seeds and image adjoint of the budget pilots (same budgets in every
#: mode and call)
PILOT_SEEDS = (0x6A09E667, 0xBB67AE85)
PILOT_ADJOINT_SEED = 0x3C6EF372
#: (one per scene, sensor and parameter set: a multi-view problem has one
#: per view, and a pilot evicted mid-run would run again)
_MAX_PILOTS = 1024


def _add(a, b):
    return {k: a[k] + b[k] for k in a} if isinstance(a, dict) else a + b


def _progress(spp: int, mode: str):
    from tqdm.auto import tqdm
    return tqdm(total=spp, unit="spp", desc=f"pathgrad {mode}", leave=False)


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
