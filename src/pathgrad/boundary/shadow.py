r"""Boundary term of direct illumination from area lights and environments
(soft shadows, the outlines of moving lights), by edge sampling at the first
shading point of camera paths.

At a shading point :math:`x` the reflected direct light is an integral over
directions,

.. math::
    L_r(x) = \int_{S^2} f(x, \omega)\, L_e(x, \omega)\, d\omega,

where :math:`f` includes the cosine and :math:`L_e(x, \omega)` is the
radiance *emitted* by the first surface (or environment) seen along
:math:`\omega`. It jumps across the directions that graze an edge which, seen
from :math:`x`, is a silhouette (or an open edge): behind it an emitter
appears or disappears. Parametrising such an edge by its 3D point
:math:`p(s) = v_0 + s (v_1 - v_0)` and writing :math:`\omega = (p - x)/r`,
:math:`r = \|p - x\|`, the tangent of the edge's image on the sphere is
:math:`t_\omega \propto (I - \omega\omega^T)(v_1 - v_0)`, its normal
:math:`n_\omega = \omega \times t_\omega`, the arc length
:math:`d\ell = \|(I - \omega\omega^T)(v_1 - v_0)\| / r \; ds` and the normal
velocity :math:`V_n = n_\omega \cdot \partial\omega`. Reynolds' theorem on
the sphere gives

.. math::
    \partial L_r(x) \mathrel{+}= \int_{\text{edges}} f(x, \omega)
        \big(L_e^-(\omega) - L_e^+(\omega)\big)\, V_n\, d\ell ,

with :math:`L_e^\pm` the emitted radiance just on the :math:`\pm n_\omega` side.
:math:`\partial\omega` comes from AD of :math:`\omega` with the edge's
vertices and the shading point attached, so moving occluders, moving
receivers and moving (mesh) lights are all covered. This is the secondary
edge-sampling term of Li et al., *Differentiable Monte Carlo Ray Tracing
through Edge Sampling* (SIGGRAPH Asia 2018), restricted to direct light.

Estimator, one sample per camera sample: the first vertex :math:`x` of the
camera path; an edge drawn from a per-frame distribution over the edges of
all meshes, proportional to length and favouring edges that are
silhouettes as seen from the lights (a defensive share keeps every edge
possible); a point uniform on it. The sample counts if the edge is a
silhouette (or open) as seen from :math:`x` and its point is visible from
:math:`x`. The result is weighted by the camera path's throughput to
:math:`x` (1 for the first vertex) and splatted like the primal sample.

Delta lights (point, spot) cast hard shadows, which are discontinuities of
the image itself: see :mod:`pathgrad.boundary.shadow_delta`.
"""

from __future__ import annotations

import drjit as dr
import mitsuba as mi
import numpy as np

from .edges import EdgeArrays

#: angular offset of the side rays from the edge direction (radians)
SIDE_OFFSET = 1e-4
#: share of the edge distribution spread by length alone (defensive mixture)
DEFENSIVE = 0.1


def _emitter_centres(scene):
    """Positions that stand for the finite emitters (bounding-box centres of
    emitting shapes, positions of point-like emitters), and whether the scene
    has an environment."""
    centres, has_env = [], False
    for e in scene.emitters():
        flags = e.flags()
        if flags & int(mi.EmitterFlags.Infinite):
            has_env = True
        shape = e.get_shape() if hasattr(e, "get_shape") else None
        if shape is not None:
            bb = shape.bbox()
            centres.append(mi.ScalarPoint3f((bb.min + bb.max) * 0.5))
        elif not flags & int(mi.EmitterFlags.Infinite):
            with dr.suspend_grad():
                it = dr.zeros(mi.Interaction3f)
                ds, _ = e.sample_direction(it, mi.Point2f(0.5), mi.Bool(True))
                centres.append(mi.ScalarPoint3f(ds.p.x[0], ds.p.y[0], ds.p.z[0]))
    return centres, has_env


class _PlanarLight:
    """A rectangle bounding a planar mesh emitter: origin, in-plane unit axes
    e1, e2, unit normal n, and the extents [u0, u1] x [v0, v1] along e1, e2."""

    def __init__(self, verts: np.ndarray):
        c = verts.mean(0)
        _, sv, vt = np.linalg.svd(verts - c)
        uv = (verts - c) @ np.stack([vt[0], vt[1]], 1)
        (self.u0, self.v0), (self.u1, self.v1) = (float(a) for a in uv.min(0)), \
            (float(a) for a in uv.max(0))
        self.e1, self.e2, self.n = (mi.ScalarVector3f(*map(float, r)) for r in vt)
        self.origin = mi.ScalarPoint3f(*map(float, c))
        self.flatness = sv[2] / max(sv[0], 1e-30)


def _light_domains(scene):
    """Planar mesh emitters (as bounding rectangles), and whether any other
    emitter (environment, curved or analytic area light) exists: those get a
    sampling component over the whole edge."""
    planar, other = [], False
    for e in scene.emitters():
        flags = int(e.flags())
        if flags & int(mi.EmitterFlags.Delta):
            continue   # point/spot/directional: not reached by rays
        shape = e.get_shape() if hasattr(e, "get_shape") else None
        if isinstance(shape, mi.Mesh):
            with dr.suspend_grad():
                v = np.array(shape.vertex_positions_buffer(), np.float64).reshape(-1, 3)
            light = _PlanarLight(v)
            if light.flatness < 1e-5:
                planar.append(light)
                continue
        other = True
    return planar, other


def _interval(light: _PlanarLight, x, q0, q1):
    """Range [s_a, s_b] of edge parameters s whose ray from x through
    q(s) = q0 + s (q1 - q0), continued past the edge, meets the light's
    rectangle; empty (s_a >= s_b) if none does."""
    n = mi.Vector3f(light.n)
    D = dr.dot(n, mi.Point3f(light.origin) - x)
    σ = dr.sign(D)
    # heights of the edge's ends towards the light plane, as seen from x:
    # only the part strictly above x and not beyond the plane can shadow it
    h0, h1 = σ * dr.dot(n, q0 - x), σ * dr.dot(n, q1 - x)
    top = dr.abs(D) * (1 + 1e-5)
    lo_h = 1e-6 * dr.abs(D)
    s_lo, s_hi = mi.Float(0.0), mi.Float(1.0)
    dh = h1 - h0
    for bound, keep_above in ((lo_h, True), (top, False)):
        # h0 + s dh >= bound (keep_above) or <= bound
        t = (bound - h0) / dh
        rising = dh > 0
        lower = keep_above == rising
        s_lo = dr.select((dh != 0) & lower, dr.maximum(s_lo, t), s_lo)
        s_hi = dr.select((dh != 0) & ~lower, dr.minimum(s_hi, t), s_hi)
        bad = (dh == 0) & ((h0 < bound) if keep_above else (h0 > bound))
        s_hi = dr.select(bad, -1.0, s_hi)
    ok = s_lo < s_hi
    qa, qb = dr.lerp(q0, q1, s_lo), dr.lerp(q0, q1, s_hi)
    ha, hb = dr.lerp(h0, h1, s_lo), dr.lerp(h0, h1, s_hi)

    e1, e2 = mi.Vector3f(light.e1), mi.Vector3f(light.e2)
    o = mi.Point3f(light.origin)

    def plane_uv(q, h):
        p = x + (q - x) * (dr.abs(D) / h)
        return mi.Point2f(dr.dot(p - o, e1), dr.dot(p - o, e2))

    P0, P1 = plane_uv(qa, ha), plane_uv(qb, hb)
    t0, t1 = mi.Float(0), mi.Float(1)
    d = P1 - P0
    for axis, lo, hi in ((0, light.u0, light.u1), (1, light.v0, light.v1)):
        for bound, sign in ((float(lo), -1.0), (float(hi), 1.0)):
            num, den = sign * (bound - P0[axis]), sign * d[axis]
            t = num / den
            t0 = dr.select(den < 0, dr.maximum(t0, t), t0)
            t1 = dr.select(den > 0, dr.minimum(t1, t), t1)
            t1 = dr.select((den == 0) & (num < 0), -1.0, t1)
    # projective map from the parameter on P0P1 back to the edge
    to_s = lambda t: dr.lerp(s_lo, s_hi, t * ha / ((1 - t) * hb + t * ha))  # noqa: E731
    s_a, s_b = to_s(dr.clip(t0, 0, 1)), to_s(dr.clip(t1, 0, 1))
    valid = ok & (t0 < t1) & dr.isfinite(s_a) & dr.isfinite(s_b) & (s_b > s_a)
    return dr.select(valid, s_a, 0.0), dr.select(valid, s_b, 0.0), valid


def _ranges(planar, other, x, q0, q1):
    """Parameter ranges of the edge q0q1 worth sampling from x: one per planar
    light (see :func:`_interval`), and the whole edge if other emitters exist."""
    out = [_interval(light, x, q0, q1) for light in planar]
    if other:
        out.append((mi.Float(0.0), mi.Float(1.0), mi.Bool(True)))
    return out


class _Candidates:
    """Edges that can cast a shadow edge in this frame, as compact arrays:
    ``index`` into the full edge arrays, detached endpoints, face normals,
    open flag, and whether the edge's mesh moves."""


def _candidates(scene, edges: EdgeArrays, planar, other):
    """Per-frame filter: edges between non-coplanar faces (or open) that are
    silhouettes as seen from some corner or the centre of a planar light
    (every such edge if environments or curved lights exist)."""
    p0, p1 = dr.detach(edges.p0), dr.detach(edges.p1)
    cos_bend = dr.dot(dr.normalize(edges.n0), dr.normalize(edges.n1))
    keep = edges.open | (cos_bend < 1 - 1e-6)
    if not other:
        lit = mi.Bool(False)
        for light in planar:
            o, e1, e2 = light.origin, light.e1, light.e2
            for u, v in ((light.u0, light.v0), (light.u1, light.v0), (light.u1, light.v1),
                         (light.u0, light.v1), (0.5 * (light.u0 + light.u1), 0.5 * (light.v0 + light.v1))):
                c = mi.Point3f(o + u * e1 + v * e2)
                s0, s1 = dr.dot(edges.n0, c - p0), dr.dot(edges.n1, c - p0)
                lit |= edges.open | (s0 * s1 <= 0)
        keep &= lit
    idx = dr.compress(keep)
    if dr.width(idx) == 0:
        return None
    c = _Candidates()
    c.index = idx
    c.count = dr.width(idx)
    g = lambda a: dr.gather(type(a), a, idx)  # noqa: E731
    c.p0, c.p1, c.n0, c.n1, c.open = g(p0), g(p1), g(edges.n0), g(edges.n1), g(edges.open)
    c.moves = g(edges.moves)
    return c


def _edge_weight(c, j, x, x_moves, planar, other, active):
    """Importance of candidate j at shading point x: zero unless it is a
    silhouette (or open) seen from x and can move relative to x; else the
    angular length, seen from x, of the part of it that lies in front of a
    light."""
    q0, q1, n0, n1, is_open, moves = (dr.gather(type(a), a, j, active)
                                      for a in (c.p0, c.p1, c.n0, c.n1, c.open, c.moves))
    mid = 0.5 * (q0 + q1)
    sil = is_open | (dr.dot(n0, x - mid) * dr.dot(n1, x - mid) < 0)
    frac = mi.Float(0.0)
    for s_a, s_b, ok in _ranges(planar, other, x, q0, q1):
        frac += dr.select(ok, s_b - s_a, 0.0)
    d = mid - x
    r = dr.norm(d)
    e = q1 - q0
    e_perp = e - d * (dr.dot(d, e) / dr.squared_norm(d))
    w = frac * dr.norm(e_perp) / r
    return dr.select(active & sil & (moves | x_moves) & dr.isfinite(w), w, 0.0)


#: candidates examined per shading point when there are more than this many
RIS_PROPOSALS = 64


def _pick_edge(c, x, x_moves, planar, other, ξ, active, seed=0):
    """One candidate edge per lane, drawn in proportion to its importance
    w_j(x) (see :func:`_edge_weight`), by weighted reservoir sampling in a
    single pass reusing one uniform number.

    With few candidates all are examined and the probability is exact,
    w_j / Σ w. With more, ``RIS_PROPOSALS`` of them are drawn by length and
    resampled (resampled importance sampling, Talbot et al. 2005): the
    returned "probability" is then w_j(x) K / Σ_k (w_k / p_k), which makes
    ``contribution / probability`` unbiased all the same.

    Returns the candidate index and that probability (0: no candidate)."""
    ris = c.count > RIS_PROPOSALS
    distr = rng = None
    if ris:
        distr = mi.DiscreteDistribution(dr.norm(c.p1 - c.p0))
        # opaque: a literal seed would compile a new kernel for every seed
        rng = mi.PCG32(dr.width(x), dr.opaque(mi.UInt64, (seed + 0x9E3779B97F4A7C15) % 2**64))
    return _reservoir(c, x, x_moves, planar, other, ξ, active, distr, rng,
                      RIS_PROPOSALS if ris else c.count)


@dr.syntax
def _reservoir(c, x, x_moves, planar, other, ξ, active, distr, rng, count):
    ris = distr is not None
    i = mi.UInt32(0)
    total = mi.Float(0.0)
    chosen = mi.UInt32(0)
    ξ = mi.Float(ξ)
    while dr.hint(i < count, label="pathgrad shadow edge reservoir"):
        if dr.hint(ris, mode="scalar"):
            j = distr.sample(rng.next_float32(), active)
            w = _edge_weight(c, j, x, x_moves, planar, other, active) / \
                dr.maximum(distr.eval_pmf_normalized(j, active), 1e-30)
        else:
            j = mi.UInt32(i)
            w = _edge_weight(c, j, x, x_moves, planar, other, active)
        total += w
        p = dr.select(total > 0, w / total, 0.0)
        take = ξ < p
        chosen = dr.select(take, j, chosen)
        ξ = dr.select(take, ξ / dr.maximum(p, 1e-30), (ξ - p) / dr.maximum(1 - p, 1e-30))
        i += 1
    w = _edge_weight(c, chosen, x, x_moves, planar, other, active)
    if dr.hint(ris, mode="scalar"):
        prob = dr.select(total > 0, w * count / total, 0.0)
    else:
        prob = dr.select(total > 0, w / total, 0.0)
    return chosen, prob


def estimate(scene: mi.Scene, sensor: mi.Sensor, seed: int, spp: int, edges: EdgeArrays):
    """Zero-valued image (H, W, C) whose derivative is the direct-light
    boundary term at the first vertex of camera paths; None if no mesh moves
    (``edges.moving``). ``edges`` holds the edges of all meshes of the scene.
    Call with gradients enabled."""
    from ..integrator import _camera_rays, _prepare_sampler

    moving = edges.moving
    if not moving or not edges.count:
        return None
    film = sensor.film()

    with dr.suspend_grad():
        planar, other = _light_domains(scene)
        cand = _candidates(scene, edges, planar, other)
        if cand is None:
            return None

        sampler, spp = _prepare_sampler(sensor, seed ^ 0x2C1B3C6D, spp)
        ray, cam_w, pos = _camera_rays(sensor, sampler)
        n = dr.width(pos)
        pi_x = scene.ray_intersect_preliminary(ray, coherent=True)
        si = pi_x.compute_surface_interaction(ray, mi.RayFlags.All)
        active = si.is_valid()
        bsdf = si.bsdf(ray)
        x_moves = mi.Bool(False)
        for m in moving:
            x_moves |= si.shape == mi.ShapePtr(m)

        # --- an edge (per shading point, by weighted reservoir sampling) ----
        j, pmf = _pick_edge(cand, si.p, x_moves, planar, other, sampler.next_1d(), active, seed)
        active &= pmf > 0
        idx = dr.gather(mi.UInt32, cand.index, j)

        # Where on the edge? Only the part whose rays reach a light can matter:
        # for each planar light, the range of s whose ray through the edge
        # meets its rectangle; a mixture over those ranges (plus the whole
        # edge when environments or curved lights exist), uniform in s.
        q0, q1 = dr.gather(mi.Point3f, dr.detach(edges.p0), idx), \
            dr.gather(mi.Point3f, dr.detach(edges.p1), idx)
        ranges = _ranges(planar, other, si.p, q0, q1)
        n_valid = mi.Float(0.0)
        for _, _, ok in ranges:
            n_valid += dr.select(ok, 1.0, 0.0)
        active &= n_valid > 0
        ξ_r = sampler.next_1d() * n_valid
        ξ_s = sampler.next_1d()
        s = mi.Float(0.0)
        seen = mi.Float(0.0)
        for s_a, s_b, ok in ranges:   # the k-th valid range for k = floor(ξ_r)
            pick = ok & (ξ_r >= seen) & (ξ_r < seen + 1)
            s = dr.select(pick, dr.lerp(s_a, s_b, ξ_s), s)
            seen += dr.select(ok, 1.0, 0.0)
        pdf_s = mi.Float(0.0)
        for s_a, s_b, ok in ranges:
            inside = ok & (s >= s_a) & (s <= s_b)
            pdf_s += dr.select(inside, dr.rcp(s_b - s_a), 0.0)
        pdf_s /= dr.maximum(n_valid, 1.0)
        active &= pdf_s > 0
        g = lambda arr: dr.gather(type(arr), arr, idx)  # noqa: E731
        q0, q1 = g(dr.detach(edges.p0)), g(dr.detach(edges.p1))
        n0, n1 = g(edges.n0), g(edges.n1)
        is_open = g(edges.open)
        x = si.p
        p = dr.lerp(q0, q1, s)
        s0, s1 = dr.dot(n0, x - p), dr.dot(n1, x - p)
        silhouette = is_open | (s0 * s1 < 0)

        to_p = p - x
        r = dr.norm(to_p)
        ω = to_p / r
        e = q1 - q0
        e_perp = e - ω * dr.dot(ω, e)
        J = dr.norm(e_perp) / r                       # dℓ_ω / ds
        t_ω = e_perp / dr.norm(e_perp)
        n_ω = dr.cross(ω, t_ω)

        # --- is the edge point visible from x? -----------------------------
        shape = dr.gather(mi.ShapePtr, edges.shapes, g(edges.mesh))
        f0, f1 = g(edges.f0), g(edges.f1)
        ray_v = si.spawn_ray(ω)
        pi_v = scene.ray_intersect_preliminary(ray_v, coherent=False, active=active)
        own = (pi_v.shape == shape) & ((pi_v.prim_index == f0) | (pi_v.prim_index == f1))
        d_hit = dr.norm(ray_v(pi_v.t) - x)
        visible = ~pi_v.is_valid() | (d_hit >= r * (1 - 1e-4)) | own
        active &= silhouette & visible & (J > 0) & dr.isfinite(J)

        # --- emitted radiance on each side ----------------------------------
        side = []
        for o in (edges.o0, edges.o1):
            side.append(dr.dot(dr.normalize(g(o) - x), n_ω))
        faces_x = [s0 > 0, s1 > 0]
        slots = g(edges.slot)

        def emitted(sign):
            on = [side[0] * sign > 0, (side[1] * sign > 0) & ~is_open]
            use1 = on[1] & (~on[0] | (faces_x[1] & ~faces_x[0]))
            has_face = on[0] | on[1]
            # a face of the edge on this side: its own emission at p
            k = dr.select(use1, 1, 0)
            j0 = (slots >> (4 * k)) & 3
            j1 = (slots >> (4 * k + 2)) & 3
            bary = [dr.select(j0 == m, 1 - s, 0.0) + dr.select(j1 == m, s, 0.0) for m in range(3)]
            pi = dr.zeros(mi.PreliminaryIntersection3f, n)
            pi.t, pi.shape = r, shape
            pi.prim_index = dr.select(use1, f1, f0)
            pi.prim_uv = mi.Point2f(bary[1], bary[2])
            pi.valid = active & has_face
            ray_f = mi.Ray3f(x, ω)
            si_f = pi.compute_surface_interaction(ray_f, mi.RayFlags.All, active & has_face)
            Le_face = si_f.emitter(scene, active & has_face).eval(si_f, active & has_face)
            # no face on this side: what lies just past the edge
            d = dr.normalize(ω + sign * SIDE_OFFSET * n_ω)
            ray_b = mi.Ray3f(x + d * (r * (1 + 1e-3)), d)
            si_b = scene.ray_intersect(ray_b, active & ~has_face)
            Le_b = si_b.emitter(scene, active & ~has_face).eval(si_b, active & ~has_face)
            # the surface point seen on this side (None: at infinity)
            y = dr.select(has_face, p, si_b.p)
            finite = has_face | si_b.is_valid()
            return dr.select(has_face, Le_face, Le_b), y, finite

        Le_m, y_m, fin_m = emitted(-1.0)
        Le_p, y_p, fin_p = emitted(+1.0)
        ctx = mi.BSDFContext()
        f = bsdf.eval(ctx, si, si.to_local(ω), active)
        weight = cam_w * f * J / dr.maximum(pmf * pdf_s, 1e-30)
        active &= dr.any((Le_m != Le_p) & (weight != 0))

    # --- attach: motion of the direction to the edge point -----------------
    # The interior term holds the *next vertex* of a path fixed in space
    # (area measure), not its direction. So each side's jump moves relative
    # to the surface point seen on that side: V = n · ∂(ω_edge − ω_side),
    # with ω_side the direction to that (fixed) point, or a fixed direction
    # for an environment. With a static shading point this is n · ∂ω_edge.
    p_att = dr.lerp(dr.gather(mi.Point3f, edges.p0, idx), dr.gather(mi.Point3f, edges.p1, idx), s)
    si_att = pi_x.compute_surface_interaction(ray, mi.RayFlags.All)   # moves along the ray
    x_att = si_att.p
    ω_e = dr.normalize(p_att - x_att)

    def velocity(y, finite):
        ω_side = dr.select(finite, dr.normalize(y - x_att), ω)
        return dr.dot(n_ω, ω_e - ω_side)

    contrib = dr.select(active, weight * (Le_m * velocity(y_m, fin_m) -
                                          Le_p * velocity(y_p, fin_p)), 0.0)

    # Splat like the primal (same positions, same filter weights, weight 1
    # per camera sample) and divide by the detached weight sums: the ratio
    # estimator of the primal, with a cheap derivative.
    nc = 4 if mi.has_flag(film.flags(), mi.FilmFlags.Alpha) else 3
    block = mi.ImageBlock(film.crop_size(), film.crop_offset(), nc + 1, film.rfilter(),
                          border=film.sample_border(), normalize=False)
    vals = [contrib.x, contrib.y, contrib.z] + ([mi.Float(0.0)] if nc == 4 else [])
    block.put(pos, vals + [mi.Float(1.0)])
    t = block.tensor()
    b = film.rfilter().border_size() if film.sample_border() else 0
    if b:
        t = t[b:t.shape[0] - b, b:t.shape[1] - b, :]
    wsum = dr.detach(t[:, :, nc:nc + 1])
    return t[:, :, 0:nc] / dr.maximum(wsum, 1e-20)
