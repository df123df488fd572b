r"""Boundary term of indirect visibility: silhouettes seen from the vertices
of camera paths, with the radiance behind them traced to the end of the path.

At the path vertex :math:`x_k` (depth :math:`k`, 0 = the first surface the
camera sees) the reflected radiance is

.. math::
    L_r(x_k) = \int_{S^2} f(x_k, \omega)\, L_i(x_k, \omega)\, d\omega ,

and the incident radiance :math:`L_i` jumps across every direction that
grazes an edge which, seen from :math:`x_k`, is a silhouette (or an open
edge): on one side the edge's own face, on the other whatever lies behind,
each carrying everything the rest of the path gathers (emission, direct and
indirect light). It also jumps across the *creases* whose two faces both
turn towards :math:`x_k`: emitted light is the same on both faces (the
first-vertex shadow term can ignore them), but the light two differently
oriented flat faces reflect is not. Reynolds' theorem on the sphere (Li et al., *Differentiable
Monte Carlo Ray Tracing through Edge Sampling*, SIGGRAPH Asia 2018, §5.2:
the secondary term at every vertex) gives the pixel derivative

.. math::
    \partial I_p \mathrel{+}= \mathbb{E}_{\bar x_k}\Big[\beta_k
        \int_{\text{edges}} f(x_k, \omega)\,
        \big(L_i^-(\omega) - L_i^+(\omega)\big)\, V_n\, d\ell(\omega)\Big],

the expectation over camera path prefixes :math:`\bar x_k = (x_0 \dots x_k)`
with throughput :math:`\beta_k` (camera weight included). The edge point
:math:`p(s)`, the direction :math:`\omega = (p - x_k)/r`, the arc length
:math:`d\ell = \|(I - \omega\omega^T)(v_1 - v_0)\|/r\, ds` and the edge
normal on the sphere :math:`n_\omega` are as in the first-vertex shadow
term. The normal velocity is taken *relative* to the point seen on each
side, :math:`V_n^\pm = n_\omega \cdot \partial(\omega - \omega^\pm)`: the
interior term (:mod:`pathgrad.interior`) holds the next vertex of a path
fixed in space, so it already accounts for the motion of the direction to
it; what is left is the edge's motion relative to it.

**Split with the other estimators**, so that nothing counts twice or goes
missing: the camera's own discontinuities (vertex "-1") belong to
:mod:`~pathgrad.boundary.primary` and :mod:`~pathgrad.boundary.terminator`;
at the first vertex (k = 0), the jump of the *emitted* radiance
:math:`L_e` belongs to :mod:`~pathgrad.boundary.shadow` (area lights,
environments) and this module takes the rest, :math:`L_i - L_e` (light
reflected by the surfaces on either side); at every deeper vertex this
module takes the whole jump of :math:`L_i`. Hard shadows of delta lights
are jumps on a receiver, not silhouettes: seen by the camera they are
:mod:`pathgrad.boundary.shadow_delta`'s; seen from a path vertex (a point
light's shadow in a glossy floor) :mod:`pathgrad.boundary.indirect_delta`'s.

**Estimator.** ``indirect_spp`` film samples per pixel, stratified over the
film. Each walks a camera path by BSDF sampling and stops at a vertex: with
probability :data:`~pathgrad.boundary.vertices.STOP_PROB` at each vertex with a non-delta BSDF, surely
at the deepest one that can still see light (depth ``max_depth - 2``); so
every such vertex is chosen with a known positive probability (unbiased for
any ``max_depth``, -1 included; deeper vertices get geometrically fewer
samples, as their throughput is smaller). At the chosen vertex one
candidate edge (every edge between non-coplanar faces, or open) is drawn in
proportion to its importance -- its angular length seen from
:math:`x_k` times the BSDF towards its middle plus a defensive share of
the BSDF's scale, zero unless it is a silhouette or a front-facing crease seen from :math:`x_k`,
not one of :math:`x_k`'s own face's edges, and moves relative to
:math:`x_k` -- exactly among up to :data:`EXACT_MAX` candidates, else
resampled from :data:`RIS_PROPOSALS` drawn by length; a point uniform on
the edge, kept if it is visible from :math:`x_k`. Each side's radiance is a
path traced from the point seen there, continuing the camera path's depth
(both sides share random numbers).

**Covered and not.** Glossy and diffuse vertices, any depth; paths whose
prefix passes through ideal specular vertices (mirrors, glass) are walked
through them, so a silhouette seen from a diffuse or glossy vertex *via* a
mirror is covered. Not covered: silhouettes seen *through* a chain of
delta vertices from the camera or from a vertex (an occluder's outline in
a perfect mirror: its image is a discontinuity of the specular chain,
which needs manifold walks); shading terminators and the shading-normal
horizon seen from a vertex (as at the first vertex, only the camera's
terminator is sampled); analytic shapes' outlines seen from a vertex.
Weak cases: many candidate edges with only a few silhouettes from each
vertex (the 16 length proposals then miss them often); edges close to a
vertex (the importance grows as 1/r).
"""

from __future__ import annotations

import drjit as dr
import mitsuba as mi

from .. import interior
from ..sampling import DiscreteDistribution
from . import silhouette as sil
from .estimator import BoundaryContext, BoundaryEstimator, Samples
from .motion import surface_point
from .shadow import film_sample_count
from .vertices import film_vertices, splat_at_film

#: candidates weighed exactly at every vertex up to this many (a level-1
#: icosphere has 120 edges: few of them are silhouettes from any one vertex,
#: and length proposals find those rarely)
EXACT_MAX = 128
#: candidates drawn by length (and resampled) beyond EXACT_MAX
RIS_PROPOSALS = 16
#: share of the BSDF's scale added to its value towards an edge's middle in
#: the edge importance: keeps every edge that can contribute drawable
#: (an edge whose middle is below the horizon may still reach above it)
DEFENSIVE = 0.1
#: relative importance of a front-facing crease against a silhouette of the
#: same angular length and BSDF value (see :func:`edge_importance`; any
#: positive value is unbiased). Across a crease the radiance jumps between
#: two faces of one object that see similar light, across a silhouette
#: between an object and what lies behind it: measured on the three
#: indirect test scenes (32 px, 64 spp, with STOP_PROB 0.8), 0.3 cut the
#: variance by 1.3x (glossy floor, whose creases matter) to 1.8x (bounced
#: light, whose unlit creases do not)
CREASE_WEIGHT = 0.3
#: angular offset of the rays past an edge that find what lies behind it (rad)
SIDE_OFFSET_RAD = 1e-4
#: the rays past an edge start this fraction of the distance before it
SIDE_START = 1e-3


class IndirectVisibility(BoundaryEstimator):
    """Silhouettes seen from camera-path vertices (see the module docstring)."""

    name = "indirect"
    switch = "indirect"
    static_edges = True

    def sample_count(self, ctx: BoundaryContext, spp: float) -> int:
        return film_sample_count(ctx, spp)

    def prepare(self, ctx: BoundaryContext) -> list:
        """One task: the candidate edges. None without moving meshes, or
        when paths are too short to carry light past a vertex's neighbour
        (``max_depth`` < 3: the first vertex's emitted light is the shadow
        estimator's, and no deeper vertex sees light)."""
        if not ctx.motion.meshes or not ctx.edges.count or ctx.max_depth < 3:
            return []
        cand = candidate_edges(ctx.edges)
        return [] if cand is None else [cand]

    def sample(self, ctx: BoundaryContext, cand: Samples, n: int) -> Samples:
        """Per film sample: a path vertex x, an edge seen from x as a
        silhouette, a visible point on it."""
        scene, edges = ctx.scene, ctx.edges
        sampler = ctx.sampler(self.name, n)
        fv = film_vertices(ctx, sampler, n, ctx.max_depth - 2)
        walk = fv.walk
        si, active = walk.si, walk.active
        x_moves = ctx.motion.shape_moves(si.shape)

        bsdf = si.bsdf(walk.ray)
        rng = mi.PCG32(n, dr.opaque(mi.UInt64, ctx.stream_seed(self.name, 1)))
        j, pmf = choose_edge(cand, si, bsdf, x_moves, active, rng)
        active &= pmf > 0
        idx = dr.gather(mi.UInt32, cand.index, j)
        g = lambda a: dr.gather(type(a), a, idx)  # noqa: E731

        s = rng.next_float32()                      # uniform on the edge
        q0, q1 = edges.endpoints(idx)
        p = dr.lerp(q0, q1, s)
        x = si.p
        d = p - x
        r = dr.norm(d)
        ω = d / r
        e = q1 - q0
        e_perp = e - ω * dr.dot(ω, e)
        J = dr.norm(e_perp) / r                     # dℓ_ω / ds
        n_ω = dr.cross(ω, e_perp / dr.norm(e_perp))
        s0, s1 = sil.side_signs(g(edges.n0), g(edges.n1), p, x)
        shape = dr.gather(mi.ShapePtr, edges.shapes, g(edges.mesh))
        ray_v = sil.visibility_ray(si, ω, r)
        pi_v = scene.ray_intersect_preliminary(ray_v, coherent=False, active=active)
        seen = sil.unoccluded(pi_v, dr.norm(ray_v(pi_v.t) - x), r,
                              sil.own_face(pi_v, shape, g(edges.f0), g(edges.f1)))
        active &= jumps_seen_from(g(edges.open), s0, s1) & seen & (J > 0) & dr.isfinite(J)
        f = bsdf.eval(mi.BSDFContext(), si, si.to_local(ω), active)
        weight = walk.β * fv.cam_w * f * J / dr.maximum(pmf, 1e-30)
        return Samples(pos=fv.pos, ray_att=fv.ray_att, ray_in=walk.ray, pi_x=walk.pi, si=si,
                       depth=walk.depth, idx=idx, s=s, p=p, r=r, ω=ω, n_ω=n_ω, s0=s0, s1=s1,
                       shape=shape, weight=weight, active=active, sampler=sampler, n=n)

    def radiance_difference(self, ctx: BoundaryContext, smp: Samples) -> None:
        """Radiance arriving at x from each side of the edge point, traced
        to the end of the path (same random numbers on both sides), less
        what the point seen there emits when x is the first vertex; and the
        point seen on each side (the velocities are relative to it)."""
        smp.L_m, smp.y_m, smp.fin_m = self._side(ctx, smp, -1.0)
        smp.L_p, smp.y_p, smp.fin_p = self._side(ctx, smp, +1.0)
        smp.active &= dr.any((smp.L_m != smp.L_p) & (smp.weight != 0))
        for k in ("si", "p", "r", "s0", "s1", "shape", "sampler"):
            vars(smp).pop(k)

    def _side(self, ctx: BoundaryContext, smp: Samples, sign: float):
        edges, scene = ctx.edges, ctx.scene
        g = lambda a: dr.gather(type(a), a, smp.idx)  # noqa: E731
        x, active = smp.si.p, smp.active
        offsets = [dr.dot(dr.normalize(g(o) - x), smp.n_ω) for o in (edges.o0, edges.o1)]
        use1, has_face = sil.side_face(offsets[0], offsets[1], sign, g(edges.open),
                                       smp.s0 > 0, smp.s1 > 0)
        # the edge's own face on this side: the path goes on from the edge point
        bary = sil.face_barycentrics(g(edges.slot), use1, 1 - smp.s, smp.s, 0.0)
        pi_f = dr.zeros(mi.PreliminaryIntersection3f, dr.width(x))
        pi_f.t, pi_f.shape = smp.r, smp.shape
        pi_f.prim_index = dr.select(use1, g(edges.f1), g(edges.f0))
        pi_f.prim_uv = mi.Point2f(bary[1], bary[2])
        pi_f.valid = active & has_face
        # no face on this side: whatever is seen just past the edge, from a
        # little before it (from past it, a ray would leave a closed room
        # at its corners, whose walls are open edges of separate meshes)
        d = dr.normalize(smp.ω + sign * SIDE_OFFSET_RAD * smp.n_ω)
        ray_b = mi.Ray3f(x + d * (smp.r * (1 - SIDE_START)), d)
        pi_b = scene.ray_intersect_preliminary(ray_b, coherent=False, active=active & ~has_face)
        ray = mi.Ray3f(dr.select(has_face, x, ray_b.o), dr.select(has_face, smp.ω, d))
        pi = dr.select(has_face, pi_f, pi_b)
        L, _ = interior.trace(dr.ADMode.Primal, scene, smp.sampler.clone(), ray, active,
                              ctx.max_depth, ctx.rr_depth, pi_first=pi, depth0=smp.depth + 1)
        si_y = pi.compute_surface_interaction(ray, mi.RayFlags.All, active)
        first = active & (smp.depth == 0)   # the shadow estimator's part
        L -= dr.select(first, si_y.emitter(scene, first).eval(si_y, first), 0.0)
        return L, si_y.p, si_y.is_valid()

    def splat(self, ctx: BoundaryContext, smp: Samples) -> mi.TensorXf:
        """V± = n_ω · ∂(ω_edge − ω_side) with the edge point and the vertex
        attached (the vertex slides along its incoming ray with its shape,
        as in the interior term), times each side's radiance, splatted as
        an estimate of the film integral."""
        first = smp.depth == 0            # seen from the camera: its ray may move
        ray_in = mi.Ray3f(dr.select(first, smp.ray_att.o, smp.ray_in.o),
                          dr.select(first, smp.ray_att.d, smp.ray_in.d))
        x_att = surface_point(smp.pi_x, ray_in)
        ω_e = dr.normalize(ctx.edges.point(smp.idx, smp.s) - x_att)

        def velocity(y, finite):
            ω_side = dr.select(finite, dr.normalize(y - x_att), smp.ω)
            return dr.dot(smp.n_ω, ω_e - ω_side)

        ΔL = smp.L_m * velocity(smp.y_m, smp.fin_m) - smp.L_p * velocity(smp.y_p, smp.fin_p)
        contrib = dr.select(smp.active, smp.weight * ΔL, 0.0)
        return splat_at_film(ctx, smp.pos, contrib, smp.n)


def candidate_edges(edges) -> Samples | None:
    """Every edge that can hide something from some viewpoint (between
    non-coplanar faces, or open), as compact detached arrays, the edges of
    moving meshes first (``n_moving`` of them: a vertex on a static surface
    needs only those); None if there is none. Host synchronisation: the
    compaction needs the counts."""
    bent = sil.is_bent(edges.open, sil.cos_bend(edges.n0, edges.n1))
    moving, static = dr.compress(bent & edges.moves), dr.compress(bent & ~edges.moves)
    n_moving = dr.width(moving)
    if n_moving == 0:
        return None
    idx = mi.UInt32(dr.concat((moving, static))) if dr.width(static) else moving
    g = lambda a: dr.gather(type(a), dr.detach(a), idx)  # noqa: E731
    return Samples(index=idx, count=dr.width(idx), n_moving=n_moving,
                   p0=g(edges.p0), p1=g(edges.p1),
                   n0=g(edges.n0), n1=g(edges.n1), open=g(edges.open), moves=g(edges.moves),
                   f0=g(edges.f0), f1=g(edges.f1),
                   shape=dr.gather(mi.ShapePtr, edges.shapes, g(edges.mesh)))


def jumps_seen_from(is_open, s0, s1) -> mi.Bool:
    """Edges across which the radiance seen from a point can jump: the
    silhouettes (and open edges), and the creases whose two faces both turn
    towards the point. Emitted light is the same on both faces of a crease,
    but *reflected* light is not (two flat faces of a lit occluder differ in
    brightness): leaving the creases out was measured 35% off finite
    differences on a sky-lit icosphere seen from a floor."""
    return sil.is_fold(is_open, s0, s1) | ((s0 > 0) & (s1 > 0))


def edge_importance(c: Samples, j, si, bsdf, f_scale, x_moves, active) -> mi.Float:
    """Importance of candidate ``j`` at the vertex ``si``: zero unless the
    radiance can jump across it seen from x (:func:`jumps_seen_from`), it is
    not an edge of x's face, and
    moves relative to x; else its angular length seen from x times the
    BSDF's luminance towards its middle plus ``DEFENSIVE`` times
    ``f_scale``, times ``CREASE_WEIGHT`` for a crease."""
    x = si.p
    q0, q1, n0, n1, is_open, moves, f0, f1, shape = (
        dr.gather(type(a), a, j, active)
        for a in (c.p0, c.p1, c.n0, c.n1, c.open, c.moves, c.f0, c.f1, c.shape))
    mid = 0.5 * (q0 + q1)
    s0, s1 = sil.side_signs(n0, n1, mid, x)
    d = mid - x
    dist2 = dr.squared_norm(d)
    e = q1 - q0
    angular = dr.norm(e - d * (dr.dot(d, e) / dist2)) * dr.rsqrt(dist2)
    f = bsdf.eval(mi.BSDFContext(), si, si.to_local(d * dr.rsqrt(dist2)), active)
    w = angular * (mi.luminance(f) + DEFENSIVE * f_scale)
    fold = sil.is_fold(is_open, s0, s1)
    w *= dr.select(fold, 1.0, CREASE_WEIGHT)
    own = (si.shape == shape) & ((si.prim_index == f0) | (si.prim_index == f1))
    ok = jumps_seen_from(is_open, s0, s1) & (moves | x_moves) & ~own & dr.isfinite(w)
    return dr.select(active & ok, w, 0.0)


def bsdf_scale(si, bsdf, active) -> mi.Float:
    """A BSDF's typical value at ``si`` (luminance, cosine included): the
    larger of its value along the normal and along the mirror direction,
    and a floor for BSDFs black in both."""
    n = mi.Vector3f(0, 0, 1)
    mirror = mi.reflect(si.wi)
    f = dr.maximum(mi.luminance(bsdf.eval(mi.BSDFContext(), si, n, active)),
                   mi.luminance(bsdf.eval(mi.BSDFContext(), si, mirror, active)))
    return dr.maximum(f, 1e-3)


def choose_edge(c: Samples, si, bsdf, x_moves, active, rng: mi.PCG32):
    """One candidate per vertex, drawn by :func:`edge_importance`, and its
    probability. A vertex on a static surface weighs only the moving
    meshes' edges, one on a moving surface every candidate. Exact among up
    to ``EXACT_MAX`` of them (weighted reservoir sampling in one pass), else
    resampled (Talbot et al. 2005) from ``RIS_PROPOSALS`` drawn by length,
    whose "probability" w_j K / Σ_k (w_k / q_k) keeps contribution /
    probability unbiased."""
    f_scale = bsdf_scale(si, bsdf, active)
    if c.count <= EXACT_MAX:
        # the counts change from render to render: opaque, or each would
        # compile its own kernels
        count = dr.select(x_moves, dr.opaque(mi.UInt32, c.count),
                          dr.opaque(mi.UInt32, c.n_moving))
        return _reservoir(c, si, bsdf, f_scale, x_moves, active, None, None, rng, count)
    length = dr.norm(c.p1 - c.p0)
    q_all = DiscreteDistribution(length)
    q_moving = DiscreteDistribution(dr.select(dr.arange(mi.UInt32, c.count) < c.n_moving,
                                              length, 0.0))
    return _reservoir(c, si, bsdf, f_scale, x_moves, active, q_all, q_moving, rng,
                      mi.UInt32(RIS_PROPOSALS))


@dr.syntax
def _reservoir(c, si, bsdf, f_scale, x_moves, active, q_all, q_moving, rng, count):
    ris = q_all is not None
    i = mi.UInt32(0)
    total, w_pick, pick = mi.Float(0.0), mi.Float(0.0), mi.UInt32(0)
    while dr.hint(i < count, label="pathgrad indirect edge choice"):
        if dr.hint(ris, mode="scalar"):
            ξ = rng.next_float32()
            j = dr.select(x_moves, q_all.sample(ξ, active), q_moving.sample(ξ, active))
            q = dr.select(x_moves, q_all.eval_pmf_normalized(j, active),
                          q_moving.eval_pmf_normalized(j, active))
            w = edge_importance(c, j, si, bsdf, f_scale, x_moves, active)
            w_r = w / dr.maximum(q, 1e-30)
        else:
            j = mi.UInt32(i)
            w = edge_importance(c, j, si, bsdf, f_scale, x_moves, active)
            w_r = mi.Float(w)
        total += w_r
        take = rng.next_float32() * total < w_r
        pick = dr.select(take, j, pick)
        w_pick = dr.select(take, w, w_pick)
        i += 1
    K = RIS_PROPOSALS if ris else 1
    return pick, dr.select(total > 0, w_pick * K / total, 0.0)
