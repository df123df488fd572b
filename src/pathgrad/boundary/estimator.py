r"""The interface every boundary estimator implements, and what they share
in one render.

A boundary estimator estimates one integral over a set of visibility
discontinuities, of the form

.. math::
    \partial_\theta I_p \mathrel{+}= \int_{\Gamma} w_p(x)\,
        \big(L^-(x) - L^+(x)\big)\, V_n(x)\, d\ell(x),

(the pixel weight :math:`w_p`, the radiance on either side and the normal
velocity of the discontinuity :math:`V_n` depend on the term). It returns a
*zero-valued* image of shape (H, W, C) whose derivative is that term:
forward mode takes ``dr.forward_to`` of it, reverse mode
``dr.backward_from(image * grad_in)``.

The integrator builds one :class:`BoundaryContext` per render and calls
:meth:`BoundaryEstimator.estimate` of each estimator in its list, which runs
the four phases of the protocol:

1. :meth:`~BoundaryEstimator.prepare` -- once per render, detached: what can
   contribute (candidate edges, lights); a list of independent sampling
   tasks (one per light, say), empty when the term is zero;
2. :meth:`~BoundaryEstimator.sample` -- detached: points on the
   discontinuity with their film position and density;
3. :meth:`~BoundaryEstimator.radiance_difference` -- detached: the radiance
   on both sides, :math:`L^- - L^+` (or each side's radiance where their
   velocities differ);
4. :meth:`~BoundaryEstimator.splat` -- attached: the normal velocity from
   AD of the sample's position, and the image through the film's filter
   (:mod:`pathgrad.film`).

The samples are evaluated between phases 3 and 4 (one kernel samples and
shades them): the splat's zero-valued primal and its derivative then read
stored arrays instead of each re-running the sampling kernel (measured: the
shadow estimator's reservoir ran twice per render before). Fields only the
first phases need should be dropped from the samples before that.

Sample budgets: each estimator has one setting, the integrator property
``<name>_spp`` (samples per film pixel, spread over the discontinuities in
view); 0 means the integrator's ``boundary_spp``, whose 0 means the spp of the
differential pass. :meth:`~BoundaryEstimator.sample_count` turns it into a
sample count.

Seeds: every estimator draws from its own stream of the render's seed
(:meth:`BoundaryContext.stream_seed`), so the primal, the interior term and
each boundary term use independent random numbers, and the same seed gives
the same numbers in the forward and reverse passes.
"""

from __future__ import annotations

import types

import drjit as dr
import mitsuba as mi

from .. import interior
from .camera import Camera, camera
from .edges import EdgeArrays
from .motion import Motion

#: per-estimator seed streams (xor-ed into the render's seed)
SEED_STREAMS = {"primary": 0x5BD1E995, "shadow": 0x2C1B3C6D, "shadow_delta": 0x68E31DA4,
                "shadow_edges": 0x7F4A7C15, "terminator": 0x1B873593,
                "analytic": 0x3C6EF372, "analytic_shadow": 0x510E527F,
                "indirect": 0x6A09E667, "indirect_delta": 0xBB67AE85}


class Samples(types.SimpleNamespace):
    """Per-sample arrays passed between the phases of one estimator (its
    fields are the estimator's own)."""


class BoundaryContext:
    """What every boundary estimator of one render shares.

    ``edges`` holds the edges of every mesh when some estimator needs static
    edges too (shadows of fixed occluders on moving receivers), else those of
    the moving meshes only. ``camera`` (the sensor projection) is looked up
    when an estimator first asks for it: estimators that work at camera
    samples alone run with any sensor."""

    def __init__(self, scene: mi.Scene, sensor: mi.Sensor, seed: int, max_depth: int,
                 rr_depth: int, motion: Motion, edges: EdgeArrays):
        self.scene, self.sensor, self.seed = scene, sensor, seed
        self.max_depth, self.rr_depth = max_depth, rr_depth
        self.motion, self.edges = motion, edges
        self._camera = None

    @property
    def camera(self) -> Camera:
        if self._camera is None:
            self._camera = camera(self.sensor)
        return self._camera

    @property
    def film(self) -> mi.Film:
        return self.sensor.film()

    @property
    def n_pixels(self) -> int:
        return int(dr.prod(self.film.crop_size()))

    def stream_seed(self, stream: str, k: int = 0) -> int:
        """The seed of one estimator's random numbers (``k``: sub-stream,
        e.g. one per light)."""
        return self.seed ^ (SEED_STREAMS[stream] + k)

    def face_hit(self, shape: mi.ShapePtr, face: mi.UInt32, bary: list, x: mi.Point3f,
                 active: mi.Bool) -> tuple[mi.Ray3f, mi.PreliminaryIntersection3f]:
        """The camera ray towards the point ``x`` of face ``face`` of ``shape``
        (barycentrics ``bary``, in face corner order) and its hit there, as
        if the ray had found it. Shading a face point itself gives the image's
        one-sided limit at a discontinuity however close another one lies in
        the film."""
        ray, dist = self.camera.ray_to(x)
        pi = dr.zeros(mi.PreliminaryIntersection3f, dr.width(x))
        pi.t, pi.prim_index, pi.shape = dist, face, shape
        pi.prim_uv = mi.Point2f(bary[1], bary[2])
        pi.valid = active
        return ray, pi

    def path_radiance(self, ray: mi.Ray3f, pi: mi.PreliminaryIntersection3f, active: mi.Bool,
                      sampler: mi.Sampler) -> tuple[mi.Spectrum, mi.Bool]:
        """Path-traced radiance along ``ray`` whose first hit is ``pi``, with
        a copy of ``sampler`` (calls with the same sampler share random
        numbers), and whether a surface is hit."""
        return interior.trace(dr.ADMode.Primal, self.scene, sampler.clone(), ray, active,
                              self.max_depth, self.rr_depth, pi_first=pi)

    def face_radiance(self, shape: mi.ShapePtr, face: mi.UInt32, bary: list, x: mi.Point3f,
                      active: mi.Bool, sampler: mi.Sampler) -> mi.Spectrum:
        """Radiance times the camera weight seen at the point ``x`` of a face
        (see :meth:`face_hit`)."""
        ray, pi = self.face_hit(shape, face, bary, x, active)
        _, w_cam = self.camera.rays(self.camera.project(x)[0])
        return self.path_radiance(ray, pi, active, sampler)[0] * w_cam

    def sampler(self, stream: str, n: int, k: int = 0) -> mi.Sampler:
        """An independent sampler of ``n`` lanes on one seed stream."""
        sampler = mi.load_dict({"type": "independent"})
        sampler.seed(self.stream_seed(stream, k), n)
        return sampler

    def stratified(self, stream: str, n: int, k: int = 0) -> tuple[mi.Sampler, mi.Float]:
        """A sampler of ``n`` lanes on one seed stream and one stratified
        number per lane, (i + ξ_i) / n: used through an inverse CDF over
        concatenated edges, it spreads samples evenly along all of them."""
        sampler = self.sampler(stream, n, k)
        return sampler, (dr.arange(mi.Float, n) + sampler.next_1d()) / n


class BoundaryEstimator:
    """Base class of the boundary estimators (see the module docstring).

    Subclasses set ``name`` (the key of their sample budget,
    ``<name>_spp``), ``switch`` (an integrator flag besides ``boundary``
    that must be on, or None) and ``static_edges`` (needs the edges of meshes
    that do not move), and implement the four phases."""

    name: str = ""
    switch: str | None = None
    static_edges: bool = False

    def sample_count(self, ctx: BoundaryContext, spp: float) -> int:
        """Samples for a budget of ``spp`` per film pixel (at least one)."""
        return max(int(round(spp * ctx.n_pixels)), 1)

    def prepare(self, ctx: BoundaryContext) -> list:
        """Once per render: the independent sampling tasks (empty: the term
        is zero in this render)."""
        raise NotImplementedError

    def sample(self, ctx: BoundaryContext, task, n: int) -> Samples:
        """``n`` detached points on the discontinuities of ``task``."""
        raise NotImplementedError

    def radiance_difference(self, ctx: BoundaryContext, smp: Samples) -> None:
        """Detached radiance on both sides; stored in ``smp``."""
        raise NotImplementedError

    def splat(self, ctx: BoundaryContext, smp: Samples) -> mi.TensorXf:
        """Attached zero-valued image (H, W, C) whose derivative is the term."""
        raise NotImplementedError

    def estimate(self, ctx: BoundaryContext, spp: float) -> mi.TensorXf | None:
        """The term as a zero-valued image, or None when it is zero. Call with
        gradients enabled."""
        if spp <= 0:
            return None
        total = None
        n = self.sample_count(ctx, spp)
        with dr.suspend_grad():
            tasks = self.prepare(ctx)
        for task in tasks:
            with dr.suspend_grad():
                smp = self.sample(ctx, task, n)
                self.radiance_difference(ctx, smp)
                # phase boundary: the splat's primal and its derivative read
                # these instead of each recomputing the sampling kernel
                dr.eval(vars(smp))
            img = self.splat(ctx, smp)
            total = img if total is None else total + img
        return total
