r"""Boundary term of primary visibility, by silhouette edge sampling.

A pixel value is :math:`I_p = \frac{1}{W_p}\int k_p(u)\, L(u)\, du` over film
positions :math:`u` (pixels), with reconstruction filter :math:`k_p` and its
integral :math:`W_p` over the sampled film region. The radiance :math:`L(u)`
seen through the film jumps across the projected silhouettes of meshes. When
a silhouette moves with normal velocity :math:`V_n = \partial_\theta u \cdot
n` (``n`` a unit normal of the projected edge), the region on the ``-n`` side
grows, and Reynolds' transport theorem gives the boundary term

.. math::
    \partial_\theta I_p \mathrel{+}= \frac{1}{W_p} \int_{\text{silhouettes}}
        k_p(u)\, \big(L^-(u) - L^+(u)\big)\, V_n(u)\, d\ell(u),

with :math:`L^\pm` the radiance just on either side (``u ± ε n``). This is the
edge-sampling formulation of Li, Aittala, Durand and Lehtinen,
*Differentiable Monte Carlo Ray Tracing through Edge Sampling* (SIGGRAPH Asia
2018), restricted to camera rays.

Besides silhouettes, radiance also jumps across the *creases* of meshes
shaded with discontinuous normals (every edge of a flat-shaded mesh; the seams
of split vertex normals, e.g. the corners of a cube): they move with the
vertices just the same, so they are sampled too.

Estimator: among the candidate edges of every mesh whose vertex positions are
differentiable (open edges, edges between a face turned towards the camera
and one turned away, and non-flat creases), pick one with probability proportional to its
projected length clipped to the sampled film region, then a point uniform
on the clipped projected segment, so the pdf is :math:`1/\Lambda` per pixel of
length (:math:`\Lambda` = total clipped length). The point counts only if its
3D edge point is the first surface along its camera ray. :math:`L^\pm` are
full path-traced estimates (the primal path tracer, sharing random numbers
between the two sides so that their difference is less noisy). The 3D edge
point is re-projected with AD attached to the vertex positions, which gives
:math:`V_n`. Each sample is splatted through the film's filter exactly where
the primal pass would splat it (:func:`pathgrad.film.splat_film_samples`).
"""

from __future__ import annotations

import drjit as dr
import mitsuba as mi

from ..film import splat_film_samples
from ..sampling import DiscreteDistribution
from . import silhouette as sil
from .estimator import BoundaryContext, BoundaryEstimator, Samples

#: offset of the side ray past an edge with no face on that side, in pixels
SIDE_OFFSET_PX = 1e-3
#: how far into a face its side of an edge is evaluated, as the weight of the
#: face's third corner (a relative distance: 1e-4 of the face's height)
FACE_OFFSET = 1e-4
#: importance of creases relative to folds of the same projected length and
#: unit sin(bend): under even lighting creases carry little, so they get less
CREASE_SHARE = 0.5


class PrimaryVisibility(BoundaryEstimator):
    """Silhouettes and creases of moving meshes seen by the camera."""

    name = "primary"

    def prepare(self, ctx: BoundaryContext) -> list:
        """The candidate edges with their clipped projections and importance
        (one task; none when no mesh moves)."""
        if not ctx.motion.meshes or not ctx.edges.count:
            return []
        return [_projected_candidates(ctx)]

    def sample(self, ctx: BoundaryContext, cand: Samples, n: int) -> Samples:
        """``n`` points on the candidate edges, stratified over their total
        clipped projected length, with their visibility from the camera."""
        edges, camera = ctx.edges, ctx.camera
        # one stratified number per sample picks the edge and the point on it
        sampler, strata = ctx.stratified(self.name, n)
        idx, ξ = cand.distr.sample_reuse(strata)
        ξ = dr.clip(ξ, 0.0, 1.0)
        length_i = dr.gather(mi.Float, cand.length, idx)
        pdf_len = cand.distr.eval_pmf_normalized(idx) / length_i   # per pixel of length
        g = lambda arr: dr.gather(type(arr), arr, idx)  # noqa: E731
        a, b, za, zb = g(cand.a), g(cand.b), g(cand.za), g(cand.zb)
        t = dr.lerp(g(cand.t_lo), g(cand.t_hi), ξ)
        u = dr.lerp(a, b, t)                              # film position
        # perspective-correct parameter on the (near-clipped) 3D segment
        s_c = camera.segment_parameter(t, za, zb)
        s = dr.lerp(g(cand.s_lo), g(cand.s_hi), s_c)
        d2 = dr.normalize(b - a)
        normal = mi.Vector2f(-d2.y, d2.x)

        # is the edge point the first surface on its camera ray?
        x = edges.point(idx, s)
        ray_v, dist = camera.ray_to(x)
        shape = dr.gather(mi.ShapePtr, edges.shapes, g(edges.mesh))
        f0, f1 = g(edges.f0), g(edges.f1)
        valid = pdf_len > 0          # false for every sample when no edge is in view
        pi_v = ctx.scene.ray_intersect_preliminary(ray_v, coherent=True,
                                                   active=valid)
        visible = valid & sil.unoccluded(pi_v, pi_v.t, dist, sil.own_face(pi_v, shape, f0, f1))
        return Samples(idx=idx, s=s, u=u, normal=normal, x=x, dist=dist, shape=shape,
                       f0=f0, f1=f1, pdf_len=pdf_len, visible=visible, n=n, sampler=sampler)

    def radiance_difference(self, ctx: BoundaryContext, smp: Samples) -> None:
        """Path-traced radiance on both sides (same random numbers):
        ``smp.ΔL = L⁻ − L⁺`` and the alpha difference ``smp.Δα``."""
        L_m, hit_m = _side_radiance(ctx, smp, -1.0, smp.sampler)
        L_p, hit_p = _side_radiance(ctx, smp, +1.0, smp.sampler)
        smp.ΔL = L_m - L_p
        smp.Δα = dr.select(hit_m, 1.0, 0.0) - dr.select(hit_p, 1.0, 0.0)

    def splat(self, ctx: BoundaryContext, smp: Samples) -> mi.TensorXf:
        """Normal velocity of the edge point in film space (AD of its
        projection), times ΔL over the density, through the film's filter."""
        u_att, _ = ctx.camera.project(ctx.edges.point(smp.idx, smp.s))
        V_n = dr.dot(u_att - dr.detach(u_att), smp.normal)     # value 0, derivative V·n
        scale = dr.select(smp.visible, V_n / smp.pdf_len, 0.0)   # visible: pdf_len > 0
        return splat_film_samples(ctx.film, ctx.camera.region, smp.u, smp.ΔL * scale,
                                  smp.Δα * scale, smp.n)


def _projected_candidates(ctx: BoundaryContext) -> Samples:
    """Per edge: folds and visible creases seen from the camera, their
    projections clipped to the near plane and the sampled film region, and
    a distribution proportional to clipped length times importance."""
    edges, camera = ctx.edges, ctx.camera
    p0, p1 = dr.detach(edges.p0), dr.detach(edges.p1)
    to_viewer = camera.to_viewer(p0)
    s0, s1 = dr.dot(edges.n0, to_viewer), dr.dot(edges.n1, to_viewer)
    cos = sil.cos_bend(edges.n0, edges.n1)
    fold = sil.is_fold(edges.open, s0, s1)
    crease = sil.is_visible_crease(edges.crease, edges.closed, cos, s0, s1)
    # Importance: a fold separates unrelated surfaces (radiance difference
    # of the order of the radiance itself); across a crease the shading
    # differs by about the bend angle, so creases get CREASE_SHARE x
    # sin(angle) of the weight of a fold of the same projected length.
    importance = dr.select(fold, 1.0, dr.select(
        crease, CREASE_SHARE * dr.sqrt(dr.maximum(1 - dr.square(cos), 0)), 0.0))

    # clip the 3D segment to the half-space in front of the near plane
    _, z0 = camera.project(p0)
    _, z1 = camera.project(p1)
    zn = mi.Float(camera.near)
    dz = z1 - z0
    s_lo = dr.select(z0 >= zn, 0.0, (zn - z0) / dz)
    s_hi = dr.select(z1 >= zn, 1.0, (zn - z0) / dz)
    in_front = (z0 >= zn) | (z1 >= zn)
    a, za = camera.project(dr.lerp(p0, p1, s_lo))
    b, zb = camera.project(dr.lerp(p0, p1, s_hi))
    t_lo, t_hi = sil.clip_segment(a, b, camera.region.lo, camera.region.hi)
    length = dr.norm(b - a) * dr.maximum(t_hi - t_lo, 0.0)
    weight = dr.select(edges.moves & in_front & dr.isfinite(length), length * importance, 0.0)
    return Samples(distr=DiscreteDistribution(weight), length=length, a=a, b=b, za=za, zb=zb,
                   t_lo=t_lo, t_hi=t_hi, s_lo=s_lo, s_hi=s_hi)


def _side_radiance(ctx: BoundaryContext, smp: Samples, sign: float, sampler):
    """The image's limit on the ``sign`` side of each edge sample (radiance
    times the camera weight), and whether a surface is seen there.

    Where a face adjacent to the edge lies on that side, it is evaluated at
    the edge point itself (moved into the face by a relative
    ``FACE_OFFSET``): that is the one-sided limit of the image, however thin
    the face looks. A camera ray offset by a fixed fraction of a pixel is
    not: next to the silhouette of a coarse smooth-shaded mesh the band where
    the interpolated normals turn away from the camera can be thinner than
    0.01 pixel (measured on a 642-vertex icosphere), and such a ray lands
    past it. Where no face lies on that side, the camera ray through
    ``u + sign·ε·n`` is traced from just past the edge."""
    edges, camera = ctx.edges, ctx.camera
    g = lambda arr: dr.gather(type(arr), arr, smp.idx)  # noqa: E731
    u, normal = smp.u, smp.normal
    q0, q1 = edges.endpoints(smp.idx)
    o = [g(edges.o0), g(edges.o1)]
    side = [dr.dot(camera.project(ok)[0] - u, normal) for ok in o]
    to_viewer = camera.to_viewer(smp.x)
    facing = [dr.dot(g(edges.n0), to_viewer) > 0, dr.dot(g(edges.n1), to_viewer) > 0]
    use1, has_face = sil.side_face(side[0], side[1], sign, g(edges.open), facing[0], facing[1])

    # the edge point, moved into the face on this side; where no face is
    # there, the camera ray through u + sign·ε·n from just past the edge
    w_opp = mi.Float(FACE_OFFSET)
    w0, w1 = (1 - smp.s) * (1 - w_opp), smp.s * (1 - w_opp)
    xf = w0 * q0 + w1 * q1 + w_opp * dr.select(use1, o[1], o[0])
    bary = sil.face_barycentrics(g(edges.slot), use1, w0, w1, w_opp)
    ray_f, pi_f = ctx.face_hit(smp.shape, dr.select(use1, smp.f1, smp.f0), bary, xf,
                               smp.visible & has_face)
    ray_s, w_cam = camera.rays(u + sign * SIDE_OFFSET_PX * normal)
    ray_s.o = ray_s(smp.dist * (1 + 1e-3))
    pi_s = ctx.scene.ray_intersect_preliminary(ray_s, coherent=True,
                                               active=smp.visible & ~has_face)
    # one path per sample, whichever way it starts
    L, hit = ctx.path_radiance(dr.select(has_face, ray_f, ray_s),
                               dr.select(has_face, pi_f, pi_s), smp.visible, sampler)
    return L * w_cam, hit
