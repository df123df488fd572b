r"""Boundary term of direct illumination at the first shading point from the
outlines of Mitsuba's analytic shapes (``sphere``, ``disk``): the soft
shadows they cast, and their own outlines when they are area lights.

The integral is the one of :mod:`pathgrad.boundary.shadow`, over the
outlines seen from the shading point :math:`x` instead of mesh edges,

.. math::
    \partial L_r(x) \mathrel{+}= \int_{\text{outlines}} f(x, \omega)
        \big(L_e^-(\omega) - L_e^+(\omega)\big)\, V_n\, d\ell ,

(Li et al., *Differentiable Monte Carlo Ray Tracing through Edge Sampling*,
SIGGRAPH Asia 2018, secondary edges, restricted to direct light). An outline
point :math:`p(\varphi)` (:func:`pathgrad.boundary.outlines.outline`, the
sphere's contour computed from :math:`x`) is seen in direction
:math:`\omega = (p - x)/r`; the outline's image on the sphere of directions
has arc length :math:`d\ell = \|(I - \omega\omega^T)\, dp/d\varphi\| / r\;
d\varphi` and normal :math:`n_\omega = \omega \times t_\omega`; :math:`V_n =
n_\omega \cdot \partial(\omega_p - \omega_{side})` relative to the point seen
on each side, as in the mesh estimator (the interior term holds the next
vertex fixed in space).

Estimator, per film sample (``analytic_shadow_spp`` per pixel, stratified
over the film as in :mod:`pathgrad.boundary.shadow`): the first vertex
:math:`x` seen there; a shape uniform among the scene's analytic shapes; φ uniform
(density 1). The sample counts where the shape or :math:`x` moves (relative
to each other or to the camera), :math:`p` is visible from :math:`x`, and
the radiance seen on the two sides differs. Whole outlines are sampled, not
only the parts in front of lights: unbiased, noisier than the mesh
estimator's clipping to planar lights.
"""

from __future__ import annotations

import drjit as dr
import mitsuba as mi

from . import silhouette as sil
from .estimator import BoundaryContext, BoundaryEstimator, Samples
from .motion import analytic_kind, shape_transform, surface_point
from .outlines import Viewpoint, outline, per_shape
from .shadow import drop_sample_fields, film_sample_count, first_hits, splat_relative_motion

#: angular offset of the side rays from the outline direction (radians)
SIDE_OFFSET_RAD = 1e-4


class AnalyticShadow(BoundaryEstimator):
    """Soft shadows and light outlines of analytic shapes, at the first
    vertex of camera paths."""

    name = "analytic_shadow"
    switch = "shadow"

    def sample_count(self, ctx: BoundaryContext, spp: float) -> int:
        return film_sample_count(ctx, spp)

    def prepare(self, ctx: BoundaryContext) -> list:
        """The scene's analytic shapes (one task; none without any, or when
        nothing moves relative to them, or at max_depth 1)."""
        shapes = [s for s in ctx.scene.shapes() if analytic_kind(s)]
        if not shapes or ctx.max_depth < 2:
            return []
        if not (ctx.motion.analytic or ctx.motion.meshes or ctx.motion.camera):
            return []
        return [Samples(shapes=shapes, kinds=[analytic_kind(s) for s in shapes],
                        ptrs=mi.ShapePtr(shapes))]

    def sample(self, ctx: BoundaryContext, task: Samples, n: int) -> Samples:
        """Per film sample (:func:`~pathgrad.boundary.shadow.first_hits`): its first vertex x, a point on the outline of
        one shape seen from x, and the point's visibility."""
        scene = ctx.scene
        ray, ray_att, cam_w, pos, pi_x, si = first_hits(ctx, self.name, n)
        x = si.p

        n_shapes = len(task.shapes)
        rng = mi.PCG32(n, dr.opaque(mi.UInt64, ctx.stream_seed(self.name, 1)))
        which = dr.minimum(mi.UInt32(rng.next_float32() * n_shapes), n_shapes - 1)
        φ = rng.next_float32()
        transforms = [type(T)(dr.detach(T.matrix)) for T in map(shape_transform, task.shapes)]
        p, t = per_shape(task.kinds, transforms, which,
                          lambda kind, T: outline(kind, T, Viewpoint(x), φ))
        shape = dr.gather(mi.ShapePtr, task.ptrs, which)
        moves = ctx.motion.shape_moves(shape) | ctx.motion.shape_moves(si.shape)
        to_p = p - x
        r = dr.norm(to_p)
        ω = to_p / r
        t_perp = t - ω * dr.dot(ω, t)
        J = dr.norm(t_perp) / r                       # dℓ_ω / dφ
        n_ω = dr.cross(ω, t_perp / dr.norm(t_perp))
        centre = per_shape(task.kinds, transforms, which, lambda kind, T: T @ mi.Point3f(0, 0, 0))
        inner = dr.sign(dr.dot(dr.normalize(centre - x), n_ω))   # the side the shape covers

        ray_v = sil.visibility_ray(si, ω, r)
        active = si.is_valid() & moves & (J > 0) & dr.isfinite(J)
        pi_v = scene.ray_intersect_preliminary(ray_v, coherent=False, active=active)
        d_hit = dr.norm(ray_v(pi_v.t) - x)
        active &= sil.unoccluded(pi_v, d_hit, r, pi_v.shape == shape)
        return Samples(ray=ray, ray_att=ray_att, cam_w=cam_w, pos=pos, pi_x=pi_x, si=si,
                       which=which, φ=φ, r=r, ω=ω, J=J, n_ω=n_ω, inner=inner,
                       pdf=mi.Float(1.0 / n_shapes), active=active, task=task, n=n)

    def radiance_difference(self, ctx: BoundaryContext, smp: Samples) -> None:
        """Emitted radiance seen on each side of the outline point, the
        points seen there, and the sample weight f · camera weight · dℓ/dφ
        / density."""
        smp.Le_m, smp.y_m, smp.fin_m = _emitted(ctx, smp, -1.0)
        smp.Le_p, smp.y_p, smp.fin_p = _emitted(ctx, smp, +1.0)
        bsdf = smp.si.bsdf(smp.ray)
        f = bsdf.eval(mi.BSDFContext(), smp.si, smp.si.to_local(smp.ω), smp.active)
        smp.weight = smp.cam_w * f * smp.J / smp.pdf
        smp.active &= dr.any((smp.Le_m != smp.Le_p) & (smp.weight != 0))
        drop_sample_fields(smp)

    def splat(self, ctx: BoundaryContext, smp: Samples) -> mi.TensorXf:
        """Motion of the direction to the outline point (shape and shading
        point attached) relative to the point seen on each side."""
        task = smp.task
        x_att = surface_point(smp.pi_x, smp.ray_att)    # moves along the camera ray
        attached = [shape_transform(s) for s in task.shapes]
        p_att, _ = per_shape(task.kinds, attached, smp.which,
                              lambda kind, T: outline(kind, T, Viewpoint(x_att), smp.φ))
        return splat_relative_motion(ctx, smp, p_att, x_att)


def _emitted(ctx: BoundaryContext, smp: Samples, sign: float):
    """Emitted radiance seen from x just on the ``sign`` side of the outline
    point, the surface point seen there and whether it is finite (not the
    environment). On the side away from the shape the ray starts just past
    the outline point (it grazes the shape there)."""
    scene, x, r = ctx.scene, smp.si.p, smp.r
    d = dr.normalize(smp.ω + sign * SIDE_OFFSET_RAD * smp.n_ω)
    outer = smp.inner * sign < 0
    o = dr.select(outer, x + d * (r * (1 + 1e-3)), sil.visibility_ray(smp.si, d, r).o)
    si = scene.ray_intersect(mi.Ray3f(o, d), smp.active)
    Le = si.emitter(scene, smp.active).eval(si, smp.active)
    return dr.select(smp.active, Le, 0.0), si.p, si.is_valid()
