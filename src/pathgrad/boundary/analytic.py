r"""Boundary term of primary visibility for Mitsuba's analytic shapes
(``sphere``, ``disk``) moved by their ``to_world``, or seen by a moving
camera. (Mitsuba 3.9.1's ``rectangle`` and ``cube`` are meshes whose vertex
positions follow ``to_world``: the mesh estimators handle them.)

The integral is the one of :mod:`pathgrad.boundary.primary`,

.. math::
    \partial_\theta I_p \mathrel{+}= \frac{1}{W_p} \int_{\text{outlines}}
        k_p(u)\, \big(L^-(u) - L^+(u)\big)\, V_n(u)\, d\ell(u),

over the film images of the shapes' outlines instead of mesh edges (Li,
Aittala, Durand and Lehtinen, *Differentiable Monte Carlo Ray Tracing through
Edge Sampling*, SIGGRAPH Asia 2018, applied to smooth curves). Each outline
is a closed 3D curve :math:`x(\varphi)`, :math:`\varphi \in [0, 1)`, seen
from the camera (:func:`pathgrad.boundary.outlines.outline`): a disk's rim,
a sphere's contour. The contour slides on the sphere as the sphere or camera
moves; only the normal component of its image's motion enters the integral,
so any smooth parametrisation gives the same term.

Estimator: every outline is cut into ``PIECES`` arcs; one distribution over
the arcs of all shapes, proportional to their projected chords, picks an arc
(stratified over the samples), and φ is uniform within it. The density per
pixel of film length is :math:`p(\varphi) / |du/d\varphi|`, with the exact
film speed :math:`du/d\varphi` (the projected tangent), so the estimator is
unbiased whatever the chords. A sample counts where its curve point is the
first surface on its camera ray. :math:`L^\pm` are path-traced along camera
rays ``SIDE_OFFSET_PX`` either side of the curve; on the side away from the
shape the ray starts just past the curve point (a ray that grazes a convex
shape there must not hit it again). The curve point re-projected with AD
attached to the shape's ``to_world`` and to the camera gives :math:`V_n`.
"""

from __future__ import annotations

import drjit as dr
import mitsuba as mi

from ..film import splat_film_samples
from ..sampling import DiscreteDistribution
from . import silhouette as sil
from .estimator import BoundaryContext, BoundaryEstimator, Samples
from .motion import analytic_kind, shape_transform
from .outlines import outline, per_shape

#: arcs per outline for choosing where to sample (the estimator is unbiased
#: for any number; more arcs follow the projected length more closely)
PIECES = 64
#: offset of the side rays from the curve, in pixels
SIDE_OFFSET_PX = 1e-3


class AnalyticOutlines(BoundaryEstimator):
    """Outlines of moving analytic shapes (or of all of them when the camera
    moves) seen by the camera."""

    name = "analytic"

    def prepare(self, ctx: BoundaryContext) -> list:
        """The arcs of every outline with their projected chords (one task;
        none without moving analytic shapes)."""
        shapes = ctx.motion.analytic
        if not shapes:
            return []
        camera = ctx.camera
        kinds = [analytic_kind(s) for s in shapes]
        transforms = [type(T)(dr.detach(T.matrix)) for T in map(shape_transform, shapes)]
        j = dr.arange(mi.Float, PIECES)
        weights = []
        for kind, T in zip(kinds, transforms):
            (x0, _), (x1, _) = (outline(kind, T, camera, (j + o) / PIECES) for o in (0, 1))
            (u0, z0), (u1, z1) = camera.project(x0), camera.project(x1)
            chord = dr.norm(u1 - u0)
            weights.append(dr.select((z0 > camera.near) & (z1 > camera.near) & dr.isfinite(chord),
                                     chord, 0.0))
        w = dr.concat(weights) if len(weights) > 1 else weights[0]
        return [Samples(shapes=shapes, kinds=kinds, transforms=transforms,
                        ptrs=mi.ShapePtr(shapes), distr=DiscreteDistribution(w))]

    def sample(self, ctx: BoundaryContext, task: Samples, n: int) -> Samples:
        """``n`` points on the outlines, their film position, normal and
        density per pixel of length, and their visibility."""
        camera = ctx.camera
        sampler, strata = ctx.stratified(self.name, n)
        b, ξ = task.distr.sample_reuse(strata)
        pmf = task.distr.eval_pmf_normalized(b)
        which = b // PIECES
        φ = (mi.Float(b % PIECES) + dr.clip(ξ, 0.0, 1.0)) / PIECES
        x, t = per_shape(task.kinds, task.transforms, which, lambda kind, T: outline(kind, T, camera, φ))
        centre = per_shape(task.kinds, task.transforms, which, lambda kind, T: T @ mi.Point3f(0, 0, 0))
        u, z = camera.project(x)
        du = camera.film_velocity(x, t)
        speed = dr.norm(du)
        normal = mi.Vector2f(-du.y, du.x) / speed
        pdf_len = pmf * PIECES / speed
        valid = (pmf > 0) & (z > camera.near) & (speed > 0) & dr.isfinite(pdf_len) \
            & camera.region.contains(u)
        shape = dr.gather(mi.ShapePtr, task.ptrs, which)
        ray_v, dist = camera.ray_to(x)
        pi_v = ctx.scene.ray_intersect_preliminary(ray_v, coherent=True, active=valid)
        visible = valid & sil.unoccluded(pi_v, pi_v.t, dist, pi_v.shape == shape)
        # which side of the curve the shape covers: the side of its centre
        inner = dr.sign(dr.dot(camera.project(centre)[0] - u, normal))
        return Samples(which=which, φ=φ, u=u, normal=normal, pdf_len=pdf_len, dist=dist,
                       inner=inner, visible=visible, n=n, sampler=sampler, task=task)

    def radiance_difference(self, ctx: BoundaryContext, smp: Samples) -> None:
        """Path-traced radiance on both sides (same random numbers):
        ``smp.ΔL = L⁻ − L⁺`` and the alpha difference ``smp.Δα``."""
        (L_m, hit_m), (L_p, hit_p) = (_side_radiance(ctx, smp, sgn) for sgn in (-1.0, 1.0))
        smp.ΔL = L_m - L_p
        smp.Δα = dr.select(hit_m, 1.0, 0.0) - dr.select(hit_p, 1.0, 0.0)

    def splat(self, ctx: BoundaryContext, smp: Samples) -> mi.TensorXf:
        """Normal velocity of the curve point in the film (AD of its
        projection with the shape's transform and the camera attached)."""
        task, camera = smp.task, ctx.camera
        attached = [shape_transform(s) for s in task.shapes]
        x, _ = per_shape(task.kinds, attached, smp.which,
                         lambda kind, T: outline(kind, T, camera, smp.φ))
        u_att, _ = camera.project(x)
        V_n = dr.dot(u_att - dr.detach(u_att), smp.normal)     # value 0, derivative V·n
        scale = dr.select(smp.visible, V_n / smp.pdf_len, 0.0)
        return splat_film_samples(ctx.film, camera.region, smp.u, smp.ΔL * scale,
                                  smp.Δα * scale, smp.n)


def _side_radiance(ctx: BoundaryContext, smp: Samples, sign: float) -> tuple:
    """Radiance times camera weight just on the ``sign`` side of the curve,
    and whether a surface is seen there."""
    ray, w_cam = ctx.camera.rays(smp.u + sign * SIDE_OFFSET_PX * smp.normal)
    outer = smp.inner * sign < 0
    ray.o = dr.select(outer, ray(smp.dist * (1 + 1e-3)), ray.o)
    pi = ctx.scene.ray_intersect_preliminary(ray, coherent=True, active=smp.visible)
    L, hit = ctx.path_radiance(ray, pi, smp.visible, smp.sampler)
    return L * w_cam, hit
