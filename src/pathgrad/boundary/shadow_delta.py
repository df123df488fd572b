r"""Boundary term of hard shadows cast by delta lights (point and spot
lights), estimated in image space.

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
curve's image per unit of :math:`s`. :math:`x_s` is recomputed with AD as
the intersection of the (attached) ray :math:`y \to p` with the (attached)
receiver plane, so moving occluders, receivers and lights are covered.
:math:`L^\pm` are full path-traced estimates on the two sides, sharing
random numbers. This is the construction of Li et al. 2018 applied to the
shadow curve rather than the silhouette.
"""

from __future__ import annotations

import drjit as dr
import mitsuba as mi

from .camera import PinholeCamera
from .edges import EdgeArrays
from .primary import splat_film_samples
from .. import interior

#: offset of the side samples from the shadow curve, in pixels (shadow rays that
#: pass within about 1e-4 scene units of an edge are not resolved reliably)
SIDE_OFFSET = 2e-2
#: relative weight of edges of static meshes (they matter for moving receivers)
STATIC_SHARE = 0.1


def delta_lights(scene) -> list:
    """Point-like emitters with a position (point, spot)."""
    out = []
    for e in scene.emitters():
        flags = int(e.flags())
        if flags & int(mi.EmitterFlags.DeltaPosition):
            out.append(e)
    return out


def _light_position(emitter, n):
    """World position of a point-like emitter, attached to its parameters."""
    it = dr.zeros(mi.Interaction3f, n)
    ds, _ = emitter.sample_direction(it, dr.zeros(mi.Point2f, n), mi.Bool(True))
    return ds.p


def estimate(scene, sensor, seed: int, samples_per_pixel: float, max_depth: int,
             rr_depth: int, edges: EdgeArrays, camera: PinholeCamera):
    """Zero-valued image (H, W, C) whose derivative is the hard-shadow
    boundary term of all point/spot lights; None if there is none.
    ``edges`` holds the edges of all meshes of the scene."""
    lights = delta_lights(scene)
    if not lights or samples_per_pixel <= 0 or not edges.count:
        return None
    moving = edges.moving
    film = sensor.film()
    n_pixels = int(dr.prod(film.crop_size()))
    n = max(int(round(samples_per_pixel * n_pixels)), 1)
    total = None

    for li, light in enumerate(lights):
        with dr.suspend_grad():
            y0 = _light_position(light, 1)
            y_s = mi.Point3f(y0.x[0], y0.y[0], y0.z[0])
            p0, p1 = dr.detach(edges.p0), dr.detach(edges.p1)
            s0, s1 = dr.dot(edges.n0, y_s - p0), dr.dot(edges.n1, y_s - p0)
            fold = edges.open | (s0 * s1 < 0)
            # An edge of a static mesh moves its shadow only if the light or
            # the receiver moves: those get a small (defensive) share unless
            # the light itself moves.
            with dr.resume_grad():
                light_moves = dr.grad_enabled(_light_position(light, 1))
            importance = dr.select(edges.moves | light_moves, 1.0, STATIC_SHARE)
            weight = dr.select(fold, dr.norm(p1 - p0) * importance, 0.0)
            distr = mi.DiscreteDistribution(weight)
            if not distr.sum() > 0:
                continue

            sampler = mi.load_dict({"type": "independent"})
            sampler.seed(seed ^ (0x68E31DA4 + li), n)
            strata = (dr.arange(mi.Float, n) + sampler.next_1d()) / n
            idx, s = distr.sample_reuse(strata)
            s = dr.clip(s, 0.0, 1.0)
            g = lambda a: dr.gather(type(a), a, idx)  # noqa: E731
            q0, q1 = g(p0), g(p1)
            pmf = distr.eval_pmf_normalized(idx)
            p = dr.lerp(q0, q1, s)
            y = mi.Point3f(y_s)
            to_p = p - y
            dist_p = dr.norm(to_p)
            d = to_p / dist_p

            # the edge point must be lit (first surface seen from the light)
            shape = dr.gather(mi.ShapePtr, edges.shapes, g(edges.mesh))
            f0, f1 = g(edges.f0), g(edges.f1)
            pi_l = scene.ray_intersect_preliminary(mi.Ray3f(y, d), coherent=False)
            own = (pi_l.shape == shape) & ((pi_l.prim_index == f0) | (pi_l.prim_index == f1))
            lit = ~pi_l.is_valid() | (pi_l.t >= dist_p * (1 - 1e-4)) | own

            # the shadow point behind it, on the first surface
            ray_s = mi.Ray3f(p + d * (dist_p * 1e-4), d)
            pi_s = scene.ray_intersect_preliminary(ray_s, coherent=False, active=lit)
            si_s = pi_s.compute_surface_interaction(ray_s, mi.RayFlags.All, lit)
            active = lit & si_s.is_valid()
            x_s = si_s.p
            n_r = si_s.n

            # seen by the camera?
            c = camera.origin
            u, z = camera.project(x_s)
            in_region = (u.x >= camera.region_lo[0]) & (u.x <= camera.region_hi[0]) & \
                (u.y >= camera.region_lo[1]) & (u.y <= camera.region_hi[1]) & (z > camera.near)
            to_x = x_s - c
            dist_x = dr.norm(to_x)
            pi_c = scene.ray_intersect_preliminary(mi.Ray3f(c, to_x / dist_x), coherent=False,
                                                   active=active)
            own_c = (pi_c.shape == pi_s.shape) & (pi_c.prim_index == pi_s.prim_index)
            seen = ~pi_c.is_valid() | (pi_c.t >= dist_x * (1 - 1e-4)) | own_c
            active &= in_region & seen

            # the shadow curve's image: tangent, normal and length per unit s
            def shadow_point(sv):
                pv = dr.lerp(q0, q1, sv)
                lam = dr.dot(n_r, x_s - y) / dr.dot(n_r, pv - y)
                return y + (pv - y) * lam

            h = 1e-3
            ua, _ = camera.project(shadow_point(dr.clip(s - h, 0, 1)))
            ub, _ = camera.project(shadow_point(dr.clip(s + h, 0, 1)))
            du = (ub - ua) / (dr.clip(s + h, 0, 1) - dr.clip(s - h, 0, 1))
            dl_ds = dr.norm(du)
            tangent = du / dl_ds
            normal = mi.Vector2f(-tangent.y, tangent.x)
            pdf_len = pmf / dl_ds                     # per pixel of curve length
            active &= (dl_ds > 0) & dr.isfinite(pdf_len) & (pdf_len > 0)

            # radiance on both sides of the shadow curve
            ray_m, w_m = camera.rays(u - SIDE_OFFSET * normal)
            ray_p, w_p = camera.rays(u + SIDE_OFFSET * normal)
            L_m, hit_m = interior.trace(dr.ADMode.Primal, scene, sampler.clone(), ray_m,
                                        active, max_depth, rr_depth)
            L_p, hit_p = interior.trace(dr.ADMode.Primal, scene, sampler, ray_p,
                                        active, max_depth, rr_depth)
            ΔL = L_m * w_m - L_p * w_p

        # --- attach: the shadow point moves with light, edge and receiver ----
        y_att = _light_position(light, n)
        p_att = dr.lerp(dr.gather(mi.Point3f, edges.p0, idx),
                        dr.gather(mi.Point3f, edges.p1, idx), s)
        ray_att = mi.Ray3f(y_att, dr.normalize(p_att - y_att))
        si_att = pi_s.compute_surface_interaction(ray_att, mi.RayFlags.All, active)
        # a static receiver keeps its plane; the attached ray slides on it
        lam = dr.dot(n_r, x_s - ray_att.o) / dr.dot(n_r, ray_att.d)
        x_plane = ray_att(lam)
        recv_moves = mi.Bool(False)
        for m in moving:
            recv_moves |= pi_s.shape == mi.ShapePtr(m)
        x_att = dr.select(recv_moves, si_att.p, x_plane)
        u_att, _ = camera.project(x_att)
        V_n = dr.dot(u_att - dr.detach(u_att), normal)
        scale = dr.select(active, V_n / pdf_len, 0.0)
        img = splat_film_samples(camera, film, u, ΔL * scale, 0.0, n)
        total = img if total is None else total + img
    return total
