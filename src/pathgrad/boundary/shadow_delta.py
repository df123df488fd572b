r"""Boundary term of hard shadows cast by delta lights (point, spot and
directional lights), seen by the camera, estimated in image space.

A point light at :math:`y` casts a hard shadow: the radiance of a receiver
jumps across the curve where rays from :math:`y` graze an occluder's
silhouette. That curve, seen by the camera, is a discontinuity of the image
itself, so its derivative has the same form as primary visibility
(:mod:`pathgrad.boundary.primary`):

.. math::
    \partial_\theta I_p \mathrel{+}= \frac{1}{W_p} \int_{\text{shadow curves}}
        k_p(u)\, \big(L^-(u) - L^+(u)\big)\, V_n(u)\, d\ell(u).

The shadow curve is traced from the light: a point :math:`p(s)` on an edge
that is a silhouette as seen from :math:`y`, the ray from :math:`y` through
:math:`p` continued to the first surface behind it, :math:`x_s`, and its
film position :math:`u_s`. The density of :math:`u_s` follows from the
choice of :math:`p` (edge drawn by length among the silhouettes seen from
the light, :math:`s` stratified) and the length :math:`d\ell/ds` of the
curve's image per unit of :math:`s`. A directional light is the same
construction with parallel rays: its "position" is a point :math:`p + R\,w`
beyond the scene along the direction :math:`w` towards the light, per edge
point, so that every ray is parallel to :math:`w` exactly. :math:`x_s` is recomputed with AD as
the intersection of the (attached) ray :math:`y \to p` with the (attached)
receiver plane, so moving occluders, receivers and lights are covered.
:math:`L^\pm` are full path-traced estimates on the two sides, sharing
random numbers. This is the construction of Li et al. 2018 applied to the
shadow curve rather than the silhouette. Shadow curves seen after a bounce
(a point light's shadow seen in a glossy floor) are
:mod:`pathgrad.boundary.indirect_delta`'s, which shares
:func:`light_silhouettes`, :func:`shadow_points` and
:func:`shadow_point_attached` with this module.
"""

from __future__ import annotations

import drjit as dr
import mitsuba as mi

from .. import interior
from ..film import splat_film_samples
from ..sampling import DiscreteDistribution
from . import silhouette as sil
from .estimator import BoundaryContext, BoundaryEstimator, Samples
from .motion import is_directional, light_direction, light_position, surface_point

#: offset of the side samples from the shadow curve, in pixels (shadow rays that
#: pass within about 1e-4 scene units of an edge are not resolved reliably)
SIDE_OFFSET_PX = 2e-2
#: relative weight of edges of static meshes (they matter for moving receivers)
STATIC_SHARE = 0.1
#: step in the edge parameter for the tangent of the shadow curve's image
TANGENT_STEP = 1e-3


def far_distance(scene: mi.Scene) -> float:
    """A distance from which rays towards any point of the scene start
    outside it: twice its bounding sphere's diameter (relative, so that a
    scene 1e-3 units across keeps its precision; 1 for an empty scene)."""
    r = float(scene.bbox().bounding_sphere().radius)
    return 4.0 * r if r > 0 else 1.0


class DeltaShadow(BoundaryEstimator):
    """Hard shadows of point, spot and directional lights, as image-space curves."""

    name = "shadow_delta"
    switch = "shadow"
    static_edges = True

    def prepare(self, ctx: BoundaryContext) -> list:
        """One task per delta light (none without edges, or at max_depth 1)."""
        if not ctx.edges.count:
            return []
        if ctx.max_depth < 2:   # paths end at the first vertex: no direct light
            return []
        return list(enumerate(ctx.motion.lights))

    def sample(self, ctx: BoundaryContext, task, n: int) -> Samples:
        """Points on edges that are silhouettes seen from the light, the
        shadow point behind each on the first surface, its film position and
        the density per pixel of the shadow curve's image."""
        li, light = task
        camera, scene = ctx.camera, ctx.scene
        sampler, strata = ctx.stratified(self.name, n, li)
        sh = shadow_points(ctx, light, light_silhouettes(ctx, light), strata)
        active, x_s, n_r, pi_s = sh.active, sh.x_s, sh.n_r, sh.pi_s
        q0, q1, s, d, y = sh.q0, sh.q1, sh.s, sh.d, sh.y
        directional = is_directional(light)

        # seen by the camera?
        u, z = camera.project(x_s)
        ray_c, dist_x = camera.ray_to(x_s)
        pi_c = scene.ray_intersect_preliminary(ray_c, coherent=False, active=active)
        seen = sil.unoccluded(pi_c, pi_c.t, dist_x, sil.own_face(pi_c, pi_s.shape, pi_s.prim_index))
        active &= camera.region.contains(u) & (z > camera.near) & seen

        # the shadow curve's image: tangent, normal and length per unit s
        def shadow_point(sv):
            pv = dr.lerp(q0, q1, sv)
            dv = d if directional else pv - y
            return pv + dv * (dr.dot(n_r, x_s - pv) / dr.dot(n_r, dv))

        sa, sb = dr.clip(s - TANGENT_STEP, 0, 1), dr.clip(s + TANGENT_STEP, 0, 1)
        du = (camera.project(shadow_point(sb))[0] - camera.project(shadow_point(sa))[0]) / (sb - sa)
        dl_ds = dr.norm(du)
        tangent = du / dl_ds
        normal = mi.Vector2f(-tangent.y, tangent.x)
        pdf_len = sh.pmf / dl_ds                  # per pixel of curve length
        active &= (dl_ds > 0) & dr.isfinite(pdf_len) & (pdf_len > 0)
        return Samples(light=light, idx=sh.idx, s=s, u=u, normal=normal, pdf_len=pdf_len,
                       active=active, pi_s=pi_s, x_s=x_s, n_r=n_r, n=n, sampler=sampler)

    def radiance_difference(self, ctx: BoundaryContext, smp: Samples) -> None:
        """Path-traced radiance on both sides of the shadow curve (same
        random numbers): ``smp.ΔL = L⁻ − L⁺``."""
        ray_m, w_m = ctx.camera.rays(smp.u - SIDE_OFFSET_PX * smp.normal)
        ray_p, w_p = ctx.camera.rays(smp.u + SIDE_OFFSET_PX * smp.normal)
        L_m, _ = interior.trace(dr.ADMode.Primal, ctx.scene, smp.sampler.clone(), ray_m,
                                smp.active, ctx.max_depth, ctx.rr_depth)
        L_p, _ = interior.trace(dr.ADMode.Primal, ctx.scene, smp.sampler, ray_p,
                                smp.active, ctx.max_depth, ctx.rr_depth)
        smp.ΔL = L_m * w_m - L_p * w_p

    def splat(self, ctx: BoundaryContext, smp: Samples) -> mi.TensorXf:
        """The shadow point moves with the light, the edge and the receiver:
        its film position re-computed with AD gives the normal velocity."""
        x_att = shadow_point_attached(ctx, smp)
        u_att, _ = ctx.camera.project(x_att)
        V_n = dr.dot(u_att - dr.detach(u_att), smp.normal)
        scale = dr.select(smp.active, V_n / smp.pdf_len, 0.0)
        return splat_film_samples(ctx.film, ctx.camera.region, smp.u, smp.ΔL * scale, 0.0, smp.n)


def light_silhouettes(ctx: BoundaryContext, light: mi.Emitter) -> DiscreteDistribution:
    """The edges that are silhouettes seen from a delta light (detached),
    weighed by length, edges of static meshes by ``STATIC_SHARE`` unless
    the light moves (they shadow only moving receivers)."""
    edges = ctx.edges
    p0 = dr.detach(edges.p0)
    if is_directional(light):
        w = light_direction(light, 1)     # towards the light; width 1
        s0, s1 = dr.dot(edges.n0, w), dr.dot(edges.n1, w)
    else:
        y = light_position(light, 1)       # width 1: broadcast, stays on the device
        s0, s1 = sil.side_signs(edges.n0, edges.n1, p0, y)
    fold = sil.is_fold(edges.open, s0, s1)
    importance = dr.select(edges.moves | ctx.motion.light_moves(light), 1.0, STATIC_SHARE)
    return DiscreteDistribution(dr.select(fold, dr.norm(dr.detach(edges.p1) - p0) * importance,
                                          0.0))


def shadow_points(ctx: BoundaryContext, light: mi.Emitter, distr: DiscreteDistribution,
                  ξ: mi.Float, active=True) -> Samples:
    """Points of hard-shadow curves in the scene (detached): an edge drawn
    from ``distr`` and a point on it (both from ``ξ`` by inverse CDF), kept
    where the light reaches it, and the first surface behind it seen from
    the light. Returns the edge ``idx``, its endpoints ``q0``, ``q1`` and
    probability ``pmf``, the edge parameter ``s`` (uniform), the light's
    position ``y`` and the ray direction ``d`` (from the light, unit), the
    shadow point ``x_s`` with its normal ``n_r`` and hit ``pi_s``, and
    ``active``. A directional light's "position" is a point beyond the
    scene on the ray parallel to its direction."""
    edges, scene = ctx.edges, ctx.scene
    directional = is_directional(light)
    idx, s = distr.sample_reuse(ξ, active)
    s = dr.clip(s, 0.0, 1.0)
    g = lambda a: dr.gather(type(a), dr.detach(a), idx)  # noqa: E731
    q0, q1 = g(edges.p0), g(edges.p1)
    pmf = distr.eval_pmf_normalized(idx, active)
    p = dr.lerp(q0, q1, s)
    if directional:   # (opaque: the bounding box changes from render to render)
        w = light_direction(light, 1)
        y = p + w * dr.opaque(mi.Float, far_distance(scene))
    else:
        y = light_position(light, 1)
    to_p = p - y
    dist_p = dr.norm(to_p)
    d = -w if directional else to_p / dist_p

    # the edge point must be lit (first surface seen from the light)
    shape = dr.gather(mi.ShapePtr, edges.shapes, g(edges.mesh))
    valid = active & (pmf > 0)    # false for every sample when no edge can shadow
    pi_l = scene.ray_intersect_preliminary(mi.Ray3f(y, d), coherent=False, active=valid)
    lit = valid & sil.unoccluded(pi_l, pi_l.t, dist_p, sil.own_face(pi_l, shape, g(edges.f0), g(edges.f1)))

    # the shadow point behind it, on the first surface
    ray_s = mi.Ray3f(p + d * (dist_p * 1e-4), d)
    pi_s = scene.ray_intersect_preliminary(ray_s, coherent=False, active=lit)
    si_s = pi_s.compute_surface_interaction(ray_s, mi.RayFlags.All, lit)
    return Samples(idx=idx, q0=q0, q1=q1, pmf=pmf, s=s, y=y, d=d, x_s=si_s.p, n_r=si_s.n,
                   pi_s=pi_s, active=lit & si_s.is_valid())


def shadow_point_rate(sh: Samples, light: mi.Emitter) -> mi.Vector3f:
    """dx_s/ds, the shadow point's motion on the receiver's plane per unit
    of the edge parameter, for :func:`shadow_points`' samples ``sh``:
    t (e − d (n_r·e)/(n_r·d)), edge vector e, ray direction d, receiver
    normal n_r, stretch t = |x_s − y| / |p − y| (1 for the parallel rays of a
    directional light, whose ``y`` is only a far point on them: measured 7%
    off with the ratio)."""
    e = sh.q1 - sh.q0
    if is_directional(light):
        t = mi.Float(1.0)
    else:
        t = dr.norm(sh.x_s - sh.y) / dr.norm(dr.lerp(sh.q0, sh.q1, sh.s) - sh.y)
    return t * (e - sh.d * (dr.dot(sh.n_r, e) / dr.dot(sh.n_r, sh.d)))


def shadow_point_attached(ctx: BoundaryContext, smp: Samples) -> mi.Point3f:
    """The shadow point recomputed with AD: where the (attached) ray from
    the light through the (attached) edge point meets the receiver. A
    static receiver keeps its (detached) plane, on which the ray slides; a
    moving one moves its point along the ray. ``smp``: ``light``, ``idx``,
    ``s``, ``x_s``, ``n_r``, ``pi_s``, ``active``, ``n``."""
    p_att = ctx.edges.point(smp.idx, smp.s)
    if is_directional(smp.light):
        ray_att = mi.Ray3f(p_att, -light_direction(smp.light, smp.n))
    else:
        y_att = light_position(smp.light, smp.n)
        ray_att = mi.Ray3f(y_att, dr.normalize(p_att - y_att))
    lam = dr.dot(smp.n_r, smp.x_s - ray_att.o) / dr.dot(smp.n_r, ray_att.d)
    return dr.select(ctx.motion.shape_moves(smp.pi_s.shape),
                     surface_point(smp.pi_s, ray_att, smp.active), ray_att(lam))
