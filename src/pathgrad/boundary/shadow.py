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

Estimator, per film sample (``shadow_spp`` per pixel, stratified over the
film, fewer than one per pixel allowed): the first vertex :math:`x` seen
there; an edge among the candidates (edges between non-coplanar faces that
are silhouettes seen from some point of a planar light, or all of them with
environments and curved lights), drawn in proportion to its importance at
:math:`x` -- its angular length, seen from :math:`x`, in front of a light,
zero unless it is a silhouette seen from :math:`x` -- exactly among up to
``EXACT_MAX`` candidates, else resampled from ``RIS_PROPOSALS`` proposals
drawn by length; a point on the part of the edge in front of a light.
The sample counts if its point is visible from :math:`x`. The result is
weighted by the camera path's throughput to :math:`x` (1 for the first
vertex) and splatted as an estimate of the film integral
(:func:`pathgrad.film.splat_film_samples`).

Delta lights (point, spot) cast hard shadows, which are discontinuities of
the image itself: see :mod:`pathgrad.boundary.shadow_delta`.
"""

from __future__ import annotations

import drjit as dr
import mitsuba as mi
import numpy as np

from ..film import film_rays, sampled_size, splat_film_samples
from ..sampling import DiscreteDistribution
from . import silhouette as sil
from .camera import film_region
from .estimator import BoundaryContext, BoundaryEstimator, Samples
from .motion import surface_point

#: angular offset of the side rays from the edge direction (radians)
SIDE_OFFSET_RAD = 1e-4


class AreaShadow(BoundaryEstimator):
    """Soft shadows and outlines of area lights and environments, at the
    first vertex of camera paths."""

    name = "shadow"
    switch = "shadow"
    static_edges = True

    def sample_count(self, ctx: BoundaryContext, spp: float) -> int:
        return film_sample_count(ctx, spp)

    def prepare(self, ctx: BoundaryContext) -> list:
        """The lights' domains and the edges that can shadow them (one task;
        none when no mesh moves or no edge can cast a shadow edge, or at max_depth 1)."""
        if not ctx.motion.meshes or not ctx.edges.count:
            return []
        if ctx.max_depth < 2:   # paths end at the first vertex: no direct light
            return []
        planar, other = _light_domains(ctx.scene)
        cand = _candidates(ctx.edges, planar, other)
        if cand is None:
            return []
        return [Samples(planar=planar, other=other, cand=cand)]

    def sample(self, ctx: BoundaryContext, task: Samples, n: int) -> Samples:
        """Per film sample: its first vertex x, an edge that is a
        silhouette seen from x (reservoir-sampled by importance), a point on
        the part of it in front of a light, and the point's visibility."""
        edges, scene, cand = ctx.edges, ctx.scene, task.cand
        planar, other = task.planar, task.other
        ray, ray_att, cam_w, pos, pi_x, si = first_hits(ctx, self.name, n)
        active = si.is_valid()
        x_moves = ctx.motion.shape_moves(si.shape)

        # an edge, per shading point, by weighted reservoir sampling
        j, pmf = _pick_edge(cand, si, x_moves, planar, other, active,
                            ctx.stream_seed("shadow_edges"))
        active &= pmf > 0
        idx = dr.gather(mi.UInt32, cand.index, j)

        # Where on the edge? Only the part whose rays reach a light can matter:
        # a mixture over the ranges of s whose rays meet a planar light (plus
        # the whole edge when environments or curved lights exist), uniform in s.
        g = lambda arr: dr.gather(type(arr), arr, idx)  # noqa: E731
        q0, q1 = edges.endpoints(idx)
        rng = mi.PCG32(n, dr.opaque(mi.UInt64, ctx.stream_seed(self.name, 1)))
        s, pdf_s = _sample_on_edge(_ranges(planar, other, si.p, q0, q1),
                                   rng.next_float32(), rng.next_float32())
        active &= pdf_s > 0
        x = si.p
        p = dr.lerp(q0, q1, s)
        s0, s1 = sil.side_signs(g(edges.n0), g(edges.n1), p, x)
        is_open = g(edges.open)
        to_p = p - x
        r = dr.norm(to_p)
        ω = to_p / r
        e = q1 - q0
        e_perp = e - ω * dr.dot(ω, e)
        J = dr.norm(e_perp) / r                       # dℓ_ω / ds
        t_ω = e_perp / dr.norm(e_perp)
        n_ω = dr.cross(ω, t_ω)

        # is the edge point visible from x?
        shape = dr.gather(mi.ShapePtr, edges.shapes, g(edges.mesh))
        f0, f1 = g(edges.f0), g(edges.f1)
        ray_v = sil.visibility_ray(si, ω, r)
        pi_v = scene.ray_intersect_preliminary(ray_v, coherent=False, active=active)
        d_hit = dr.norm(ray_v(pi_v.t) - x)
        visible = sil.unoccluded(pi_v, d_hit, r, sil.own_face(pi_v, shape, f0, f1))
        active &= sil.is_fold(is_open, s0, s1) & visible & (J > 0) & dr.isfinite(J)
        return Samples(ray=ray, ray_att=ray_att, cam_w=cam_w, pos=pos, pi_x=pi_x, si=si, idx=idx,
                       pmf=pmf, pdf_s=pdf_s, s=s, p=p, r=r, ω=ω, J=J, n_ω=n_ω, s0=s0, s1=s1,
                       is_open=is_open, shape=shape, f0=f0, f1=f1, active=active, n=n)

    def radiance_difference(self, ctx: BoundaryContext, smp: Samples) -> None:
        """Emitted radiance seen on each side of the edge point, the points
        seen there (their velocities differ), and the sample weight
        f · camera weight · dℓ/ds / density."""
        smp.Le_m, smp.y_m, smp.fin_m = _emitted(ctx, smp, -1.0)
        smp.Le_p, smp.y_p, smp.fin_p = _emitted(ctx, smp, +1.0)
        bsdf = smp.si.bsdf(smp.ray)
        f = bsdf.eval(mi.BSDFContext(), smp.si, smp.si.to_local(smp.ω), smp.active)
        smp.weight = smp.cam_w * f * smp.J / dr.maximum(smp.pmf * smp.pdf_s, 1e-30)
        smp.active &= dr.any((smp.Le_m != smp.Le_p) & (smp.weight != 0))
        drop_sample_fields(smp)

    def splat(self, ctx: BoundaryContext, smp: Samples) -> mi.TensorXf:
        """Motion of the direction to the edge point relative to the point
        seen on each side, times each side's radiance; splatted over the
        film."""
        # The interior term holds the *next vertex* of a path fixed in space
        # (area measure), not its direction. So each side's jump moves relative
        # to the surface point seen on that side: V = n · ∂(ω_edge − ω_side),
        # with ω_side the direction to that (fixed) point, or a fixed direction
        # for an environment. With a static shading point this is n · ∂ω_edge.
        x_att = surface_point(smp.pi_x, smp.ray_att)    # moves along the camera ray
        return splat_relative_motion(ctx, smp, ctx.edges.point(smp.idx, smp.s), x_att)


def splat_relative_motion(ctx: BoundaryContext, smp: Samples, p_att, x_att) -> mi.TensorXf:
    """The first-vertex shadow term of samples ``smp`` (fields ``ω``,
    ``n_ω``, ``weight``, ``active``, ``pos`` and each side's ``Le``, seen
    point ``y`` and ``fin``ite flag), with the discontinuity point ``p_att``
    and the shading point ``x_att`` attached: V = n · ∂(ω_edge − ω_side)
    on each side, splatted as an estimate of the film integral (``n`` film
    samples from :func:`first_hits`)."""
    ω_e = dr.normalize(p_att - x_att)

    def velocity(y, finite):
        ω_side = dr.select(finite, dr.normalize(y - x_att), smp.ω)
        return dr.dot(smp.n_ω, ω_e - ω_side)

    contrib = dr.select(smp.active, smp.weight * (smp.Le_m * velocity(smp.y_m, smp.fin_m) -
                                                  smp.Le_p * velocity(smp.y_p, smp.fin_p)), 0.0)
    P = int(dr.prod(sampled_size(ctx.film)))   # 1 / density of the film positions
    return splat_film_samples(ctx.film, film_region(ctx.sensor), smp.pos, contrib * P, 0.0, smp.n)


def film_sample_count(ctx: BoundaryContext, spp: float) -> int:
    """Samples of an estimator that works at film samples (:func:`first_hits`):
    ``spp`` per pixel of the sampled film region (fewer than one allowed: a
    stratified subset of film positions), at least one."""
    return max(int(round(spp * int(dr.prod(sampled_size(ctx.film))))), 1)


def first_hits(ctx: BoundaryContext, stream: str, n: int):
    """``n`` film samples spread evenly over the film (:func:`pathgrad.film.film_rays`)
    on seed stream ``stream``, and their first hits: ``(ray, ray_att,
    cam_w, pos, pi, si)``, the ray also attached to the camera (``ray_att``)
    when it moves, everything else detached."""
    with dr.resume_grad(when=ctx.motion.camera):   # kept attached for the splat
        ray_att, cam_w, pos = film_rays(ctx.sensor, ctx.sampler(stream, n), n)
    ray, cam_w = mi.Ray3f(dr.detach(ray_att)), dr.detach(cam_w)
    pi = ctx.scene.ray_intersect_preliminary(ray, coherent=True)
    si = pi.compute_surface_interaction(ray, mi.RayFlags.All)
    return ray, ray_att, cam_w, pos, pi, si


def drop_sample_fields(smp: Samples) -> None:
    """Forget the fields of a first-vertex shadow sample that only the
    sample and radiance phases use, so that the arrays evaluated at the
    phase boundary (what the splat reads) stay small."""
    for name in ("ray", "si", "p", "r", "J", "s0", "s1", "is_open", "f0", "f1", "pmf", "pdf_s"):
        vars(smp).pop(name, None)


#: a mesh emitter is planar when its thickness is below this fraction of its size
PLANAR_FLATNESS = 1e-5
#: margin of a planar light's bounding rectangle, relative to its diagonal
RECT_MARGIN = 1e-4


class _PlanarLight:
    """A rectangle bounding a planar mesh emitter: origin, in-plane unit axes
    e1, e2, unit normal n, and the extents [u0, u1] x [v0, v1] along e1, e2
    (scene units). ``flatness``: thickness over size (unitless).

    The rectangle is the smallest one (by area) around the vertices, so it
    is the same set whatever the scene's scale: the principal axes alone
    are arbitrary for a square or regular light (equal singular values),
    and would turn with the rounding of the positions.

    Computed on the host, but held as opaque (width-1) device arrays, not as
    Python floats: literals would be compiled into the shadow kernels, and a
    light whose vertices are optimised would then compile, and keep in the
    kernel cache, a new set of kernels at every step (measured: 3 kernels
    and about 700 KB of memory per step, and 20x slower steps)."""

    def __init__(self, verts: np.ndarray):
        c = verts.mean(0)
        _, sv, vt = np.linalg.svd(verts - c)
        self.flatness = sv[2] / sv[0] if sv[0] > 0 else 0.0
        axes = vt[:2]
        if self.flatness < PLANAR_FLATNESS:
            axes = _min_area_axes((verts - c) @ vt[:2].T) @ vt[:2]
        uv = (verts - c) @ axes.T
        lo, hi = uv.min(0), uv.max(0)
        # the light's own border lies on the rectangle's: a margin keeps rays
        # through it inside whatever the rounding (relative to the size)
        pad = RECT_MARGIN * float(np.linalg.norm(hi - lo))
        (u0, v0), (u1, v1) = lo - pad, hi + pad
        self.u0, self.v0, self.u1, self.v1 = (_opaque(mi.Float, a) for a in (u0, v0, u1, v1))
        self.e1, self.e2, self.n = (_opaque(mi.Vector3f, *r) for r in (axes[0], axes[1], vt[2]))
        self.origin = _opaque(mi.Point3f, *c)


def _convex_hull(pts: np.ndarray) -> np.ndarray:
    """Corners of the convex hull of 2D points, counter-clockwise (Andrew's
    monotone chain)."""
    pts = np.unique(pts, axis=0)          # sorted by x, then y
    if len(pts) < 3:
        return pts

    def turns_left(o, a, b):
        return (a[0] - o[0]) * (b[1] - o[1]) - (a[1] - o[1]) * (b[0] - o[0]) > 0

    def chain(seq):
        out = []
        for q in seq:
            while len(out) >= 2 and not turns_left(out[-2], out[-1], q):
                out.pop()
            out.append(q)
        return out[:-1]
    return np.array(chain(pts) + chain(pts[::-1]))


def _min_area_axes(uv: np.ndarray) -> np.ndarray:
    """Unit axes (rows of a 2x2 rotation) of the smallest-area rectangle
    around the 2D points ``uv``: one of its sides lies along an edge of
    their convex hull (Freeman and Shapira 1975), so the hull's edges are
    the candidates."""
    hull = _convex_hull(uv)
    if len(hull) < 3:
        return np.eye(2)
    d = np.roll(hull, -1, 0) - hull
    d /= np.linalg.norm(d, axis=1, keepdims=True)
    perp = np.stack([-d[:, 1], d[:, 0]], 1)
    a, b = hull @ d.T, hull @ perp.T           # extents along each candidate
    k = int(np.argmin(np.ptp(a, 0) * np.ptp(b, 0)))
    return np.stack([d[k], perp[k]])


def _opaque(cls, *values):
    """A width-1 device array of type ``cls`` holding ``values`` (host
    numbers), evaluated: its value is not part of any kernel."""
    v = cls(*(float(x) for x in values))
    dr.make_opaque(v)
    return v


#: planar lights by mesh id: (positions buffer, rectangle). The entry holds a
#: detached reference to the positions it was computed from, not the mesh: a
#: cached mesh would keep its scene's BSDFs and emitters alive, with their AD
#: graphs (an old, gradient-carrying variable reachable from a later render
#: breaks forward mode inside a custom op); and while the buffer is held its
#: JIT index cannot be reused, so a new mesh at the same address never matches.
_planar_cache: dict = {}
_MAX_PLANAR = 32


def _planar_light(shape: mi.Mesh) -> _PlanarLight:
    """The bounding rectangle of a mesh emitter, recomputed (on the host)
    only when its vertex positions are written anew."""
    buf = dr.detach(shape.vertex_positions_buffer())
    hit = _planar_cache.get(id(shape))
    if hit is not None and hit[0].index == buf.index:
        return hit[1]
    v = np.array(buf, np.float64).reshape(-1, 3)
    light = _PlanarLight(v)
    _planar_cache.pop(id(shape), None)
    _planar_cache[id(shape)] = (buf, light)
    while len(_planar_cache) > _MAX_PLANAR:
        _planar_cache.pop(next(iter(_planar_cache)))
    return light


def _light_domains(scene):
    """Planar mesh emitters (as bounding rectangles), and whether any other
    emitter (environment, curved or analytic area light) exists: those get a
    sampling component over the whole edge."""
    planar, other = [], False
    for e in scene.emitters():
        if int(e.flags()) & int(mi.EmitterFlags.Delta):
            continue   # point/spot/directional: not reached by rays
        shape = e.get_shape() if hasattr(e, "get_shape") else None
        if isinstance(shape, mi.Mesh):
            light = _planar_light(shape)
            if light.flatness < PLANAR_FLATNESS:
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
    s_lo, s_hi = sil.clip_segment(h0, h1, lo_h, top)
    ok = s_lo < s_hi
    qa, qb = dr.lerp(q0, q1, s_lo), dr.lerp(q0, q1, s_hi)
    ha, hb = dr.lerp(h0, h1, s_lo), dr.lerp(h0, h1, s_hi)

    e1, e2 = mi.Vector3f(light.e1), mi.Vector3f(light.e2)
    o = mi.Point3f(light.origin)

    def plane_uv(q, h):
        p = x + (q - x) * (dr.abs(D) / h)
        return mi.Point2f(dr.dot(p - o, e1), dr.dot(p - o, e2))

    P0, P1 = plane_uv(qa, ha), plane_uv(qb, hb)
    t0, t1 = sil.clip_segment(P0, P1, (light.u0, light.v0), (light.u1, light.v1))
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


def _sample_on_edge(ranges, ξ_r, ξ_s):
    """A parameter s uniform in one of the valid ``ranges`` (picked
    uniformly by ``ξ_r``), and its density (the mixture over all ranges)."""
    n_valid = mi.Float(0.0)
    for _, _, ok in ranges:
        n_valid += dr.select(ok, 1.0, 0.0)
    ξ_r = ξ_r * n_valid
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
    return s, dr.select(n_valid > 0, pdf_s, 0.0)


def _candidates(edges, planar, other):
    """Per-frame filter: edges between non-coplanar faces (or open) that are
    silhouettes as seen from some corner or the centre of a planar light
    (every such edge if environments or curved lights exist), as compact
    arrays (``index`` into the edge arrays, detached endpoints and normals,
    open flag, whether the edge's mesh moves, adjacent faces, shape); None
    if there is none.

    Host synchronisation: the compaction needs the count of candidates."""
    p0, p1 = dr.detach(edges.p0), dr.detach(edges.p1)
    keep = sil.is_bent(edges.open, sil.cos_bend(edges.n0, edges.n1))
    if not other:
        lit = mi.Bool(False)
        for light in planar:
            o, e1, e2 = light.origin, light.e1, light.e2
            for u, v in ((light.u0, light.v0), (light.u1, light.v0), (light.u1, light.v1),
                         (light.u0, light.v1), (0.5 * (light.u0 + light.u1), 0.5 * (light.v0 + light.v1))):
                s0, s1 = sil.side_signs(edges.n0, edges.n1, p0, mi.Point3f(o + u * e1 + v * e2))
                lit |= sil.is_fold(edges.open, s0, s1, inclusive=True)
        keep &= lit
    idx = dr.compress(keep)
    if dr.width(idx) == 0:
        return None
    g = lambda a: dr.gather(type(a), a, idx)  # noqa: E731
    return Samples(index=idx, count=dr.width(idx), p0=g(p0), p1=g(p1), n0=g(edges.n0),
                   n1=g(edges.n1), open=g(edges.open), moves=g(edges.moves), f0=g(edges.f0),
                   f1=g(edges.f1), shape=dr.gather(mi.ShapePtr, edges.shapes, g(edges.mesh)))


#: candidates examined exactly, at every shading point, up to this many;
#: beyond, ``RIS_PROPOSALS`` drawn by length are resampled. Measured on the
#: area-light occluder (60 candidates): 16 length proposals give 5.5x the
#: standard deviation of the exact choice, which costs less than that in
#: time; on the camera scene (512 candidates) 16 give 1.13x that of 64, at
#: a quarter of their cost (docs/performance.md, "Boundary throughput")
EXACT_MAX = 64
#: proposals per shading point when there are more than EXACT_MAX candidates
RIS_PROPOSALS = 16


def _edge_weight(c, j, si, x_moves, planar, other, active):
    """Importance of candidate j at the shading point ``si``: zero unless it
    is a silhouette (or open) seen from x = si.p and can move relative to x,
    or if it is an edge of x's own face (seen exactly edge-on from x, its
    side sign is rounding noise); else the angular length, seen from x, of
    the part of it that lies in front of a light."""
    x = si.p
    q0, q1, n0, n1, is_open, moves, f0, f1, shape = (
        dr.gather(type(a), a, j, active)
        for a in (c.p0, c.p1, c.n0, c.n1, c.open, c.moves, c.f0, c.f1, c.shape))
    own = (si.shape == shape) & ((si.prim_index == f0) | (si.prim_index == f1))
    mid = 0.5 * (q0 + q1)
    s0, s1 = sil.side_signs(n0, n1, mid, x)
    frac = mi.Float(0.0)
    for s_a, s_b, ok in _ranges(planar, other, x, q0, q1):
        frac += dr.select(ok, s_b - s_a, 0.0)
    d = mid - x
    r = dr.norm(d)
    e = q1 - q0
    e_perp = e - d * (dr.dot(d, e) / dr.squared_norm(d))
    w = frac * dr.norm(e_perp) / r
    ok = sil.is_fold(is_open, s0, s1) & (moves | x_moves) & ~own & dr.isfinite(w)
    return dr.select(active & ok, w, 0.0)


def _pick_edge(c, si, x_moves, planar, other, active, seed: int):
    """One candidate edge per shading point ``si``, drawn in proportion to
    its importance w_j(x) (see :func:`_edge_weight`) by weighted reservoir
    sampling in a single pass.

    With few candidates (up to ``EXACT_MAX``) all are examined and the
    probability is exact, w_j / Σ w. Else ``RIS_PROPOSALS`` candidates are
    drawn by length (q) and resampled (resampled importance sampling,
    Talbot et al. 2005): the returned "probability" is then
    w_j(x) K / Σ_k (w_k / q_k), which makes ``contribution / probability``
    unbiased all the same (q > 0 for every edge of nonzero length).

    Returns the candidate index and that probability (0: no candidate)."""
    ris = c.count > EXACT_MAX
    # opaque: a literal seed would compile a new kernel for every seed
    rng = mi.PCG32(dr.width(si.p), dr.opaque(mi.UInt64, seed))
    proposal = DiscreteDistribution(dr.norm(c.p1 - c.p0)) if ris else None
    # the candidate count changes from render to render: opaque, or every
    # count would compile (and keep in the kernel cache) its own loop kernels
    count = RIS_PROPOSALS if ris else dr.opaque(mi.UInt32, c.count)
    return _reservoir(c, si, x_moves, planar, other, active, proposal, rng, count)


@dr.syntax
def _reservoir(c, si, x_moves, planar, other, active, proposal, rng, count):
    ris = proposal is not None
    i = mi.UInt32(0)
    total = mi.Float(0.0)
    chosen, w_chosen = mi.UInt32(0), mi.Float(0.0)
    while dr.hint(i < count, label="pathgrad shadow edge reservoir"):
        if dr.hint(ris, mode="scalar"):
            j = proposal.sample(rng.next_float32(), active)
            w = _edge_weight(c, j, si, x_moves, planar, other, active)
            w_ris = w / dr.maximum(proposal.eval_pmf_normalized(j, active), 1e-30)
        else:
            j = mi.UInt32(i)
            w = _edge_weight(c, j, si, x_moves, planar, other, active)
            w_ris = mi.Float(w)
        total += w_ris
        take = rng.next_float32() * total < w_ris
        chosen = dr.select(take, j, chosen)
        w_chosen = dr.select(take, w, w_chosen)
        i += 1
    if dr.hint(ris, mode="scalar"):
        prob = dr.select(total > 0, w_chosen * count / total, 0.0)
    else:
        prob = dr.select(total > 0, w_chosen / total, 0.0)
    return chosen, prob


def _emitted(ctx: BoundaryContext, smp: Samples, sign: float):
    """Emitted radiance seen from x on the ``sign`` side of the edge point,
    the surface point seen there and whether it is finite (not the
    environment)."""
    edges, scene = ctx.edges, ctx.scene
    g = lambda arr: dr.gather(type(arr), arr, smp.idx)  # noqa: E731
    x, n_ω, r, ω, active = smp.si.p, smp.n_ω, smp.r, smp.ω, smp.active
    side = [dr.dot(dr.normalize(g(o) - x), n_ω) for o in (edges.o0, edges.o1)]
    use1, has_face = sil.side_face(side[0], side[1], sign, smp.is_open, smp.s0 > 0, smp.s1 > 0)
    # a face of the edge on this side: its own emission at p
    bary = sil.face_barycentrics(g(edges.slot), use1, 1 - smp.s, smp.s, 0.0)
    on_face = active & has_face
    pi = dr.zeros(mi.PreliminaryIntersection3f, dr.width(x))
    pi.t, pi.shape = r, smp.shape
    pi.prim_index = dr.select(use1, smp.f1, smp.f0)
    pi.prim_uv = mi.Point2f(bary[1], bary[2])
    pi.valid = on_face
    si_f = pi.compute_surface_interaction(mi.Ray3f(x, ω), mi.RayFlags.All, on_face)
    Le_face = si_f.emitter(scene, on_face).eval(si_f, on_face)
    # no face on this side: what lies just past the edge
    behind = active & ~has_face
    d = dr.normalize(ω + sign * SIDE_OFFSET_RAD * n_ω)
    si_b = scene.ray_intersect(mi.Ray3f(x + d * (r * (1 + 1e-3)), d), behind)
    Le_b = si_b.emitter(scene, behind).eval(si_b, behind)
    y = dr.select(has_face, smp.p, si_b.p)
    return dr.select(has_face, Le_face, Le_b), y, has_face | si_b.is_valid()
