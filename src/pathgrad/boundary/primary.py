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
the primal pass would splat it.
"""

from __future__ import annotations

import drjit as dr
import mitsuba as mi
import numpy as np

from .. import interior
from .camera import PinholeCamera
from .edges import EdgeArrays

#: offset of the two side rays from the edge, in pixels
SIDE_OFFSET = 1e-3
#: importance of creases relative to folds of the same projected length and
#: unit sin(bend): under even lighting creases carry little, so they get less
CREASE_SHARE = 0.5


def differentiable_meshes(scene: mi.Scene) -> list:
    """Meshes of the scene whose vertex positions carry gradients."""
    out = []
    for shape in scene.shapes():
        if isinstance(shape, mi.Mesh) and dr.grad_enabled(shape.vertex_positions_buffer()):
            out.append(shape)
    return out


def _clip_2d(a, b, lo, hi):
    """Liang-Barsky: parameter range [t0, t1] of segment a->b inside the box
    [lo, hi]; empty where t0 >= t1."""
    t0, t1 = mi.Float(0), mi.Float(1)
    d = b - a
    for axis in range(2):
        da, aa = d[axis], a[axis]
        for bound, sign in ((float(lo[axis]), -1.0), (float(hi[axis]), 1.0)):
            # inside: sign * (aa + t da - bound) <= 0
            num = sign * (bound - aa)
            den = sign * da
            t = num / den
            parallel = den == 0
            outside_parallel = parallel & (num < 0)
            t0 = dr.select(~parallel & (den < 0), dr.maximum(t0, t), t0)
            t1 = dr.select(~parallel & (den > 0), dr.minimum(t1, t), t1)
            t1 = dr.select(outside_parallel, -1.0, t1)
    return t0, t1


def estimate(scene: mi.Scene, sensor: mi.Sensor, seed: int, samples_per_pixel: float,
             max_depth: int, rr_depth: int, edges: EdgeArrays, camera: PinholeCamera):
    """The primary boundary term as an image of shape (H, W, C) whose value
    is zero and whose derivative is the boundary term (forward mode:
    ``dr.forward_to``; reverse: ``dr.backward_from(image * grad)``). Only the
    edges of moving meshes (``edges.moves``) are sampled. Returns None when
    none is in view. Must be called with gradients enabled."""
    if not edges.moving or not edges.count or samples_per_pixel <= 0:
        return None
    film = sensor.film()

    with dr.suspend_grad():
        # --- which edges are silhouettes, and their clipped projections ----
        c = camera.origin
        p0, p1 = dr.detach(edges.p0), dr.detach(edges.p1)
        s0 = dr.dot(edges.n0, c - p0)
        s1 = dr.dot(edges.n1, c - p0)
        cos_bend = dr.dot(dr.normalize(edges.n0), dr.normalize(edges.n1))
        fold = edges.open | (s0 * s1 < 0)
        # creases of a closed mesh facing away from the camera are hidden
        crease = edges.crease & (cos_bend < 1 - 1e-6) & ~(edges.closed & (s0 < 0) & (s1 < 0))
        # Importance: a fold separates unrelated surfaces (radiance difference
        # of the order of the radiance itself); across a crease the shading
        # differs by about the bend angle, so creases get CREASE_SHARE x
        # sin(angle) of the weight of a fold of the same projected length.
        importance = dr.select(fold, 1.0,
                               dr.select(crease, CREASE_SHARE * dr.sqrt(
                                   dr.maximum(1 - dr.square(cos_bend), 0)), 0.0))

        # clip the 3D segment to the half-space in front of the near plane
        _, z0 = camera.project(p0)
        _, z1 = camera.project(p1)
        zn = mi.Float(camera.near)
        dz = z1 - z0
        s_lo = dr.select(z0 >= zn, 0.0, (zn - z0) / dz)
        s_hi = dr.select(z1 >= zn, 1.0, (zn - z0) / dz)
        in_front = (z0 >= zn) | (z1 >= zn)
        q0 = dr.lerp(p0, p1, s_lo)
        q1 = dr.lerp(p0, p1, s_hi)
        a, za = camera.project(q0)
        b, zb = camera.project(q1)
        t_lo, t_hi = _clip_2d(a, b, camera.region_lo, camera.region_hi)
        length = dr.norm(b - a) * dr.maximum(t_hi - t_lo, 0.0)
        weight = dr.select(edges.moves & in_front & dr.isfinite(length), length * importance, 0.0)
        distr = mi.DiscreteDistribution(weight)
        if not distr.sum() > 0:
            return None

        # --- sample edge points -------------------------------------------
        n_pixels = int(dr.prod(film.crop_size()))
        n = max(int(round(samples_per_pixel * n_pixels)), 1)
        sampler = mi.load_dict({"type": "independent"})
        sampler.seed(seed ^ 0x5BD1E995, n)
        # one stratified number per sample picks the edge and the point on it
        # (the inverse CDF of the concatenated edges): samples spread evenly
        # along all candidate edges instead of clumping.
        strata = (dr.arange(mi.Float, n) + sampler.next_1d()) / n
        idx, ξ = distr.sample_reuse(strata)
        ξ = dr.clip(ξ, 0.0, 1.0)
        length_i = dr.gather(mi.Float, length, idx)
        pdf_len = distr.eval_pmf_normalized(idx) / length_i   # per pixel of length
        g = lambda arr: dr.gather(type(arr), arr, idx)  # noqa: E731
        a_i, b_i, za_i, zb_i = g(a), g(b), g(za), g(zb)
        t = dr.lerp(g(t_lo), g(t_hi), ξ)
        u = dr.lerp(a_i, b_i, t)                         # film position
        # perspective-correct parameter on the (near-clipped) 3D segment
        s_c = t * za_i / dr.maximum((1 - t) * zb_i + t * za_i, 1e-20)
        s = dr.lerp(g(s_lo), g(s_hi), s_c)
        d2 = dr.normalize(b_i - a_i)
        normal = mi.Vector2f(-d2.y, d2.x)

        # --- is the edge point the first surface on its camera ray? -------
        # (a hit on one of the edge's own faces counts as visible: rays that
        # graze them at the edge are numerically unreliable)
        x = dr.lerp(g(p0), g(p1), s)
        dist = dr.norm(x - c)
        d = (x - c) / dist
        shape = dr.gather(mi.ShapePtr, edges.shapes, g(edges.mesh))
        f0, f1 = g(edges.f0), g(edges.f1)
        pi_v = scene.ray_intersect_preliminary(mi.Ray3f(c, d), coherent=True)
        own = (pi_v.shape == shape) & ((pi_v.prim_index == f0) | (pi_v.prim_index == f1))
        visible = ~pi_v.is_valid() | (pi_v.t >= dist * (1 - 1e-4)) | own

        # --- what each side of the edge shows ------------------------------
        # An adjacent face lies on the side of the edge where its third corner
        # projects. A side covered by two faces (a silhouette fold) shows the
        # one facing the camera; a side with no face shows what is behind.
        side = []
        for k, (o, nk) in enumerate(((edges.o0, edges.n0), (edges.o1, edges.n1))):
            uo, _ = camera.project(g(o))
            side.append(dr.dot(uo - u, normal))
        facing = [dr.dot(g(edges.n0), c - x) > 0, dr.dot(g(edges.n1), c - x) > 0]
        is_open = g(edges.open)
        slots = g(edges.slot)
        _, w_cam = camera.rays(u)

        def radiance(sign, smp):
            on = [(side[0] * sign > 0), (side[1] * sign > 0) & ~is_open]
            # choose the adjacent face shown on this side, if any
            use1 = on[1] & (~on[0] | (facing[1] & ~facing[0]))
            has_face = on[0] | on[1]
            f = dr.select(use1, f1, f0)
            k = dr.select(use1, 1, 0)
            # Evaluate that face where the camera ray through u + sign·ε·n meets
            # its plane (clamped to the triangle): just inside, like the image
            # next to the edge; on a face seen edge-on this lands past the thin
            # band where smooth shading normals turn away from the camera.
            ray_s, _ = camera.rays(u + sign * SIDE_OFFSET * normal)
            q0, q1 = g(p0), g(p1)
            opp = dr.select(use1, g(edges.o1), g(edges.o0))
            nf = dr.cross(q1 - q0, opp - q0)
            t_hit = dr.dot(q0 - ray_s.o, nf) / dr.dot(ray_s.d, nf)
            xs = ray_s(t_hit)
            nn = dr.squared_norm(nf)
            γ = dr.dot(dr.cross(q1 - q0, xs - q0), nf) / nn
            β = dr.dot(dr.cross(xs - q0, opp - q0), nf) / nn
            ok = dr.isfinite(γ) & dr.isfinite(β) & (t_hit > 0)
            β = dr.select(ok, dr.maximum(β, 0), s)
            γ = dr.select(ok, dr.maximum(γ, 0), 0)
            α = dr.maximum(1 - β - γ, 0)
            tot = α + β + γ
            α, β, γ = α / tot, β / tot, γ / tot
            xf = α * q0 + β * q1 + γ * opp
            j0 = (slots >> (4 * k)) & 3        # slot of endpoint 0 in face k
            j1 = (slots >> (4 * k + 2)) & 3    # slot of endpoint 1
            bary = [dr.select(j0 == m, α, dr.select(j1 == m, β, γ)) for m in range(3)]
            df = xf - c
            tf = dr.norm(df)
            pi = dr.zeros(mi.PreliminaryIntersection3f, n)
            pi.t, pi.prim_index, pi.shape = tf, f, shape
            pi.prim_uv = mi.Point2f(bary[1], bary[2])
            pi.valid = visible & has_face
            L_face, _ = interior.trace(dr.ADMode.Primal, scene, smp.clone(), mi.Ray3f(c, df / tf),
                                       visible & has_face, max_depth, rr_depth, pi_first=pi)
            # no face on this side: look just past the edge
            ray_s.o = ray_s(dist * (1 + 1e-3))
            L_behind, hit_b = interior.trace(dr.ADMode.Primal, scene, smp.clone(), ray_s,
                                             visible & ~has_face, max_depth, rr_depth)
            L = dr.select(has_face, L_face, L_behind) * w_cam
            return L, has_face | hit_b

        L_m, hit_m = radiance(-1.0, sampler)
        L_p, hit_p = radiance(+1.0, sampler)
        ΔL = L_m - L_p
        Δα = dr.select(hit_m, 1.0, 0.0) - dr.select(hit_p, 1.0, 0.0)

    # --- attach: normal velocity of the edge point in film space -----------
    x_att = dr.lerp(dr.gather(mi.Point3f, edges.p0, idx),
                    dr.gather(mi.Point3f, edges.p1, idx), s)
    u_att, _ = camera.project(x_att)
    V_n = dr.dot(u_att - dr.detach(u_att), normal)       # value 0, derivative V·n
    scale = dr.select(visible & (pdf_len > 0), V_n / pdf_len, 0.0)

    return splat_film_samples(camera, film, u, ΔL * scale, Δα * scale, n)


def splat_film_samples(camera: PinholeCamera, film, u, value: mi.Spectrum, alpha, n: int):
    """Splat ``n`` film-space samples (positions ``u``, full-film pixels)
    through the film's filter and divide by ``n`` times the filter's integral
    over the sampled region, so that the image estimates
    ``(1/W_p) ∫ k_p(u) value(u) du``. Returns a (H, W, C) tensor."""
    channels = [value.x, value.y, value.z]
    if mi.has_flag(film.flags(), mi.FilmFlags.Alpha):
        channels.append(mi.Float(alpha))
    block = mi.ImageBlock(film.crop_size(), film.crop_offset(), len(channels),
                          film.rfilter(), border=False, normalize=False)
    block.put(u, channels)
    W = camera.normalisation() * n
    return block.tensor() / mi.TensorXf(np.repeat(W[..., None], len(channels), -1).astype(np.float32))
