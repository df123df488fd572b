r"""Boundary term of delta lights' hard shadows seen from the vertices of
camera paths (a point light's shadow seen in a glossy floor).

A point, spot or directional light casts a hard shadow: the light it sends
straight to a receiver point :math:`x_r` jumps across the *shadow curve*
where rays from the light graze an occluder's silhouette. Seen from a path
vertex :math:`x_k`, the radiance arriving from the receiver,
:math:`L_i(x_k, \omega)`, jumps across the directions of that curve, so
the reflected radiance at :math:`x_k`

.. math::
    L_r(x_k) = \int_{S^2} f(x_k, \omega)\, L_i(x_k, \omega)\, d\omega

has the boundary term (Reynolds' theorem on the sphere, as in Li et al.,
*Differentiable Monte Carlo Ray Tracing through Edge Sampling*, SIGGRAPH
Asia 2018, §5.2, with the discontinuity traced from the light instead of
seen as a silhouette from :math:`x_k`)

.. math::
    \partial I_p \mathrel{+}= \mathbb{E}_{\bar x_k}\Big[\beta_k
        \int_{\text{shadow curves}} f(x_k, \omega)\,
        \big(L_d^-(\omega) - L_d^+(\omega)\big)\, V_n\, d\ell(\omega)\Big],

where :math:`L_d^\pm` is the light's direct contribution at the receiver
point seen on either side, :math:`f_r(x_r^\pm)\, I / |y - x_r^\pm|^2\,
V(x_r^\pm, y)`: the rest of what arrives from the receiver (its emission,
other lights, indirect light) is continuous across the curve, so only this
part enters (no path tracing past the receiver; lower noise).

**The curve and its density.** As in :mod:`pathgrad.boundary.shadow_delta`:
an edge that is a silhouette seen from the light, drawn by length, a point
:math:`p(s)` on it (s uniform) that the light reaches, and the first
surface behind it, :math:`x_s(s)`. Seen from :math:`x_k` (it must be
visible from there) its direction :math:`\omega = (x_s - x_k)/r` moves
with :math:`s` at the angular rate
:math:`d\ell/ds = \|(I - \omega\omega^T)\, dx_s/ds\| / r`, with
:math:`dx_s/ds = t\,(e - d\, (n_r \cdot e)/(n_r \cdot d))` (edge vector
:math:`e`, light ray direction :math:`d`, receiver normal :math:`n_r`,
:math:`t = |x_s - y| / |p - y|`; 1 for a directional light).

**Velocity.** The interior term (:mod:`pathgrad.interior`) holds the next
vertex fixed, and moves the receiver's point along the (detached) ray from
:math:`x_k`; the visibility towards the light it evaluates there jumps
where that point meets the shadow curve of the moving light, occluder and
receiver. So the curve's velocity is that of
:math:`\omega = \mathrm{normalize}(x_s^{\text{att}} - x_k)` with
:math:`x_k` detached and :math:`x_s^{\text{att}}` the attached light ray's
meeting with the receiver
(:func:`~pathgrad.boundary.shadow_delta.shadow_point_attached`): the
vertex's own motion moves no shadow curve.

**Split with the other estimators.** Shadow curves seen by the camera are
:mod:`~pathgrad.boundary.shadow_delta`'s; this module takes them seen from
every vertex :math:`x_k` with a non-delta BSDF whose receiver, at depth
:math:`k+1`, still gathers direct light (:math:`k \le` ``max_depth - 3``);
vertices are chosen as in :mod:`~pathgrad.boundary.vertices`, so paths pass
through mirrors and glass on the way to :math:`x_k`. Silhouettes seen from
vertices are :mod:`~pathgrad.boundary.indirect`'s. Not covered: a shadow
curve seen *through* a chain of delta vertices from :math:`x_k` (in a
perfect mirror), and shadows of delta lights on analytic receivers cast by
analytic shapes' outlines.

**Weak cases.** The curve point is drawn independently of the vertex (by
edge length, as seen from the light): a sharp BSDF at :math:`x_k` (a
narrow glossy lobe) weighs few of them, and the estimator's noise grows
with the lobe's sharpness.
"""

from __future__ import annotations

import drjit as dr
import mitsuba as mi

from . import silhouette as sil
from .estimator import BoundaryContext, BoundaryEstimator, Samples
from .shadow import film_sample_count
from .shadow_delta import (light_silhouettes, shadow_point_attached, shadow_point_rate,
                           shadow_points)
from .vertices import film_vertices, splat_at_film

#: angular offset of the rays to either side of the shadow curve (rad)
SIDE_OFFSET_RAD = 1e-3


class IndirectDeltaShadow(BoundaryEstimator):
    """Delta lights' shadow curves seen from camera-path vertices."""

    name = "indirect_delta"
    switch = "indirect"
    static_edges = True

    def sample_count(self, ctx: BoundaryContext, spp: float) -> int:
        return film_sample_count(ctx, spp)

    def prepare(self, ctx: BoundaryContext) -> list:
        """One task per delta light; none without edges, or when no vertex
        can see a receiver that still gathers direct light (``max_depth``
        < 3)."""
        if not ctx.edges.count or ctx.max_depth < 3:
            return []
        return list(enumerate(ctx.motion.lights))

    def sample(self, ctx: BoundaryContext, task, n: int) -> Samples:
        """Per film sample: a path vertex x, a shadow-curve point x_s seen
        from it, and the weight β f dℓ/ds / pmf of its direction."""
        li, light = task
        scene = ctx.scene
        sampler = ctx.sampler(self.name, n, li)
        fv = film_vertices(ctx, sampler, n, ctx.max_depth - 3)
        si, active = fv.walk.si, fv.walk.active
        sh = shadow_points(ctx, light, light_silhouettes(ctx, light), sampler.next_1d(), active)
        active &= sh.active
        x, x_s = si.p, sh.x_s
        r = dr.norm(x_s - x)
        ω = (x_s - x) / r
        ray_v = sil.visibility_ray(si, ω, r)
        pi_v = scene.ray_intersect_preliminary(ray_v, coherent=False, active=active)
        seen = sil.unoccluded(pi_v, dr.norm(ray_v(pi_v.t) - x), r,
                              sil.own_face(pi_v, sh.pi_s.shape, sh.pi_s.prim_index))
        not_own = ~sil.own_face(sh.pi_s, si.shape, si.prim_index)
        active &= seen & not_own & (r > 0)

        # dℓ/ds: the curve point's motion along the receiver, seen from x
        dxs = shadow_point_rate(sh, light)
        dω = (dxs - ω * dr.dot(ω, dxs)) / r
        J = dr.norm(dω)
        n_ω = dr.cross(ω, dω / J)
        active &= (J > 0) & dr.isfinite(J)
        f = si.bsdf(fv.walk.ray).eval(mi.BSDFContext(), si, si.to_local(ω), active)
        weight = fv.walk.β * fv.cam_w * f * J / dr.maximum(sh.pmf, 1e-30)
        return Samples(light=light, pos=fv.pos, si=si, x=x, ω=ω, n_ω=n_ω, r=r, idx=sh.idx, s=sh.s,
                       x_s=x_s, n_r=sh.n_r, pi_s=sh.pi_s, weight=weight,
                       active=active & dr.any(weight != 0), n=n)

    def radiance_difference(self, ctx: BoundaryContext, smp: Samples) -> None:
        """The light's direct contribution at the receiver point seen just
        to either side of the curve: ``smp.ΔL = L_d⁻ − L_d⁺``."""
        L_m = self._direct(ctx, smp, -1.0)
        L_p = self._direct(ctx, smp, +1.0)
        smp.ΔL = L_m - L_p
        smp.active &= dr.any(smp.ΔL != 0)
        for k in ("si", "r"):
            vars(smp).pop(k)

    def _direct(self, ctx: BoundaryContext, smp: Samples, sign: float) -> mi.Spectrum:
        scene, si, active = ctx.scene, smp.si, smp.active
        d = dr.normalize(smp.ω + sign * SIDE_OFFSET_RAD * smp.n_ω)
        ray = sil.visibility_ray(si, d, smp.r)
        si_r = scene.ray_intersect(ray, mi.RayFlags.All, coherent=False, active=active)
        active &= si_r.is_valid()
        ds, I = smp.light.sample_direction(si_r, dr.zeros(mi.Point2f, dr.width(d)), active)
        occluded = scene.ray_test(si_r.spawn_ray_to(ds.p), active)
        f_r = si_r.bsdf(ray).eval(mi.BSDFContext(), si_r, si_r.to_local(ds.d), active)
        return dr.select(active & ~occluded, f_r * I, 0.0)

    def splat(self, ctx: BoundaryContext, smp: Samples) -> mi.TensorXf:
        """V_n = n_ω · ∂ normalize(x_s^att − x) with x detached (see the
        module docstring), times ΔL, splatted at the film sample."""
        ω_att = dr.normalize(shadow_point_attached(ctx, smp) - smp.x)
        V_n = dr.dot(smp.n_ω, ω_att - dr.detach(ω_att))
        contrib = dr.select(smp.active, smp.weight * smp.ΔL * V_n, 0.0)
        return splat_at_film(ctx, smp.pos, contrib, smp.n)
