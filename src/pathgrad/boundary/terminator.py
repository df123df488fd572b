r"""Boundary term of the view-side shading terminator of smooth-shaded meshes.

On a mesh with interpolated vertex normals, Mitsuba shades a surface point
:math:`x(b) = \sum_i b_i p_i` (barycentrics :math:`b` of a face with corners
:math:`p_i` and vertex normals :math:`n_i`) in the frame of the shading normal
:math:`N(b) = \sum_i b_i n_i` (normalised), and its BSDFs and ``area``
emitters return zero when the view direction lies below that normal's
horizon. Inside a face the image therefore jumps across the curve

.. math::
    F(b) = N(b) \cdot \big(c - x(b)\big) = b^\top M b = 0,
    \qquad M_{ij} = n_i \cdot (c - p_j)

(``c``: camera centre; the second form uses :math:`\sum_j b_j = 1`), a conic
in the face that moves with the vertices, separate from the mesh's
silhouettes. Across it the radiance goes from the lit side (F > 0) to black
(F < 0) for one-sided BSDFs, from front to back lobe for two-sided ones.

With :math:`n = \nabla_u F / |\nabla_u F|` the unit normal of the curve in
film coordinates :math:`u` (pixels), the curve moves with normal velocity
:math:`V_n = -\partial_\theta F / |\nabla_u F|` (implicit differentiation at
a fixed film point), and Reynolds' transport theorem gives the same boundary
term as for silhouettes (:mod:`pathgrad.boundary.primary`):

.. math::
    \partial_\theta I_p \mathrel{+}= \frac{1}{W_p} \int_{F = 0}
        k_p(u)\, \big(L^-(u) - L^+(u)\big)\, V_n(u)\, d\ell(u).

:math:`L^\pm` are the image's one-sided limits: the path-traced radiance of
the same face evaluated a tiny distance on either side of the curve (on the
face, not along offset camera rays: next to a silhouette of a coarse mesh
the curve can lie within a hundredth of a pixel of it).

Sampling the curve (it has no explicit parametrisation): Crofton's formula
writes a curve integral as an integral over the lines of the plane,

.. math::
    \int_\Gamma f\, d\ell = \frac{1}{2} \int_0^\pi \int_{\mathbb{R}}
        \sum_{u \in \Gamma \cap G(p, \varphi)} f(u)\; dp\, d\varphi,

with :math:`G(p, \varphi)` the line :math:`\{u : u \cdot m_\varphi = p\}`. A
face is chosen with probability :math:`P_k` proportional to its projected
perimeter, then :math:`\varphi` uniform in :math:`[0, \pi)` and :math:`p`
uniform over the face's projected width :math:`w(\varphi)`; along the line's
chord through the face F is a quadratic in the chord parameter (the
barycentrics are affine in it), whose roots in the chord are the crossings.
One of the :math:`N` roots is kept at random, so each sample carries the
weight :math:`\frac{\pi}{2}\, w(\varphi)\, N / P_k` (bounded: no division by
the angle between line and curve). Faces are candidates only where F takes
both signs (its extremes over a face lie at the corners, on the edges or at
the interior stationary point of the quadratic form, all checked), so a
curve that enters and leaves a face through one edge is found too.

Crofton's formula is classical integral geometry (Santaló, *Integral
Geometry and Geometric Probability*, 1976); the term itself is the
edge-sampling integral of Li, Aittala, Durand and Lehtinen (SIGGRAPH Asia
2018) applied to a curve inside faces, which Mitsuba's projective
integrators do not sample.

With a moving camera, ``c`` (or, for an orthographic camera, the viewing
direction: ``c - w x`` with ``w = 0``, see :meth:`Camera.to_viewer`) and the
camera ray through u are attached to the pose, and F's re-evaluation gives
the curve's motion due to both. Limits: faces with a corner behind the
camera's near plane are skipped.
"""

from __future__ import annotations

import math

import drjit as dr
import mitsuba as mi

from ..film import splat_film_samples
from ..sampling import DiscreteDistribution
from . import silhouette as sil
from .edges import concat_lanes
from .estimator import BoundaryContext, BoundaryEstimator, Samples

#: how far on the face each side of the curve is evaluated, relative to the
#: face's size (sqrt of twice its area): both sides stay on the face, so a
#: silhouette close by in the film cannot be crossed
FACE_OFFSET = 1e-4
#: importance of faces turned away from the camera (seen only on open meshes
#: or from inside a closed one) relative to faces turned towards it
BACK_FACE_SHARE = 0.25


class ViewTerminator(BoundaryEstimator):
    """The curve F = 0 inside the faces of moving smooth-shaded meshes."""

    name = "terminator"
    switch = "terminator"

    def prepare(self, ctx: BoundaryContext) -> list:
        """The faces of moving smooth-shaded meshes where F takes both signs,
        with their projected perimeters (one task; none without such meshes)."""
        meshes = [m for m in ctx.motion.meshes if m.has_vertex_normals() and m.face_count()]
        if not meshes:
            return []
        return [_candidate_faces(ctx, meshes)]

    def sample(self, ctx: BoundaryContext, cand: Samples, n: int) -> Samples:
        """``n`` points on the curve: a face, a random line through its
        projection, one root of F along the line's chord through the face."""
        camera = ctx.camera
        sampler, strata = ctx.stratified(self.name, n)
        k, _ = cand.distr.sample_reuse(strata)
        P = cand.distr.eval_pmf_normalized(k)
        p = [dr.gather(mi.Point3f, q, k) for q in cand.p]
        nv = [dr.gather(mi.Vector3f, q, k) for q in cand.n]
        proj = [camera.project(q) for q in p]

        # a line u·m = h of uniform direction and offset through the projection
        ξ = sampler.next_2d()
        φ = math.pi * ξ.x
        m = mi.Vector2f(-dr.sin(φ), dr.cos(φ))
        h = [dr.dot(a, m) for a, _ in proj]
        h_lo = dr.minimum(dr.minimum(h[0], h[1]), h[2])
        h_hi = dr.maximum(dr.maximum(h[0], h[1]), h[2])
        width = h_hi - h_lo
        b_a, b_b, has_chord = _chord(h, [z for _, z in proj], dr.lerp(h_lo, h_hi, ξ.y), camera)

        # F along the chord b(σ) = b_a + σ (b_b − b_a): A σ² + B σ + C
        M = _form(p, nv, camera)
        db = [b_b[i] - b_a[i] for i in range(3)]
        A = _quad(M, db, db)
        B = _quad(M, b_a, db) + _quad(M, db, b_a)
        C = _quad(M, b_a, b_a)
        σ, n_roots = _pick_root(A, B, C, sampler.next_1d())
        bary = [dr.fma(σ, db[i], b_a[i]) for i in range(3)]
        x = bary[0] * p[0] + bary[1] * p[1] + bary[2] * p[2]
        u, depth = camera.project(x)

        grad_u, grad_x = _film_gradient(camera, p, nv, bary, x, depth)
        g_len = dr.norm(grad_u)
        inv_pdf = 0.5 * math.pi * width * mi.Float(n_roots) / P    # pixels of length
        valid = has_chord & (n_roots > 0) & (g_len > 0) & dr.isfinite(inv_pdf) \
            & (depth > camera.near) & camera.region.contains(u)

        # is the point the first surface on its camera ray?
        ray_v, dist = camera.ray_to(x)
        shape, f = dr.gather(mi.ShapePtr, cand.shape, k), dr.gather(mi.UInt32, cand.face, k)
        pi_v = ctx.scene.ray_intersect_preliminary(ray_v, coherent=True, active=valid)
        visible = valid & sil.unoccluded(pi_v, pi_v.t, dist, sil.own_face(pi_v, shape, f))
        # the two sides, a relative FACE_OFFSET of the face's size away on the face
        step = FACE_OFFSET * dr.sqrt(dr.norm(dr.cross(p[1] - p[0], p[2] - p[0]))) \
            * dr.normalize(grad_x)
        sides = [_on_face(p, x + sgn * step) for sgn in (-1.0, 1.0)]
        return Samples(cand=cand, k=k, u=u, normal=grad_u / g_len, g_len=g_len,
                       inv_pdf=inv_pdf, visible=visible, n=n, sampler=sampler,
                       shape=shape, face=f, sides=sides)

    def radiance_difference(self, ctx: BoundaryContext, smp: Samples) -> None:
        """``smp.ΔL = L⁻ − L⁺``: the face evaluated just on either side of
        the curve (same random numbers). Both sides are the same surface, so
        the alpha channel does not jump."""
        L_m, L_p = (ctx.face_radiance(smp.shape, smp.face, bary, x, smp.visible, smp.sampler)
                    for bary, x in smp.sides)
        smp.ΔL = L_m - L_p

    def splat(self, ctx: BoundaryContext, smp: Samples) -> mi.TensorXf:
        """V_n = −∂θF / |∇_u F|, where ∂θF is F re-evaluated with AD attached
        to the vertices at the point where the fixed camera ray through u
        meets the moving face."""
        p, nv = _attached_corners(smp.cand, smp.k)
        ray, _ = ctx.camera.rays(smp.u)
        F = _value_on_ray(p, nv, ray, ctx.camera)
        V_n = -(F - dr.detach(F)) / smp.g_len            # value 0, derivative V_n
        scale = dr.select(smp.visible, V_n * smp.inv_pdf, 0.0)
        return splat_film_samples(ctx.film, ctx.camera.region, smp.u, smp.ΔL * scale, 0.0,
                                  smp.n)


# ---------------------------------------------------------------------------
# candidate faces
# ---------------------------------------------------------------------------

def _face_corners(mesh: mi.Mesh, face: mi.UInt32, active=True):
    """Corner positions and vertex normals of faces ``face`` of ``mesh``
    (attached unless gradients are suspended)."""
    fi = [dr.gather(mi.UInt32, mesh.faces_buffer(), 3 * face + j, active) for j in range(3)]
    p = [dr.gather(mi.Point3f, mesh.vertex_positions_buffer(), i, active) for i in fi]
    n = [dr.gather(mi.Vector3f, mesh.vertex_normals_buffer(), i, active) for i in fi]
    return p, n


def _candidate_faces(ctx: BoundaryContext, meshes: list) -> Samples:
    """Per face of ``meshes`` (concatenated): corners, vertex normals, and a
    distribution over faces proportional to projected perimeter where F
    changes sign on the face (zero elsewhere)."""
    camera = ctx.camera
    cols = {k: [] for k in ("p", "n", "face", "mesh", "weight")}
    for mi_idx, mesh in enumerate(meshes):
        face = dr.arange(mi.UInt32, mesh.face_count())
        p, nv = _face_corners(mesh, face)
        proj = [camera.project(q) for q in p]
        a = [u for u, _ in proj]
        in_front = (proj[0][1] > camera.near) & (proj[1][1] > camera.near) \
            & (proj[2][1] > camera.near)
        lo = dr.minimum(dr.minimum(a[0], a[1]), a[2])
        hi = dr.maximum(dr.maximum(a[0], a[1]), a[2])
        overlap = dr.all((hi >= camera.region.lo) & (lo <= camera.region.hi))
        perimeter = dr.norm(a[1] - a[0]) + dr.norm(a[2] - a[1]) + dr.norm(a[0] - a[2])
        facing = dr.dot(dr.cross(p[1] - p[0], p[2] - p[0]), camera.to_viewer(p[0])) > 0
        share = dr.select(facing, 1.0, BACK_FACE_SHARE)
        ok = _changes_sign(_form(p, nv, camera)) & in_front & overlap \
            & dr.isfinite(perimeter)
        cols["p"].append(p)
        cols["n"].append(nv)
        cols["face"].append(face)
        cols["mesh"].append(dr.full(mi.UInt32, mi_idx, mesh.face_count()))
        cols["weight"].append(dr.select(ok, perimeter * share, 0.0))
    corners = lambda key, cls: [concat_lanes([c[j] for c in cols[key]], cls)  # noqa: E731
                                for j in range(3)]
    mesh_idx = concat_lanes(cols["mesh"], mi.UInt32)
    return Samples(meshes=meshes, p=corners("p", mi.Point3f), n=corners("n", mi.Vector3f),
                   face=concat_lanes(cols["face"], mi.UInt32), mesh=mesh_idx,
                   shape=dr.gather(mi.ShapePtr, mi.ShapePtr(meshes), mesh_idx),
                   distr=DiscreteDistribution(concat_lanes(cols["weight"], mi.Float)))


def _attached_corners(cand: Samples, k: mi.UInt32):
    """Corners and vertex normals of candidate faces ``k``, attached to the
    meshes' vertex positions (and the normals ``params.update()`` derives)."""
    mesh, face = dr.gather(mi.UInt32, cand.mesh, k), dr.gather(mi.UInt32, cand.face, k)
    p = [dr.zeros(mi.Point3f, dr.width(k)) for _ in range(3)]
    nv = [dr.zeros(mi.Vector3f, dr.width(k)) for _ in range(3)]
    for i, m in enumerate(cand.meshes):
        on = mesh == i
        pm, nm = _face_corners(m, face, on)
        p = [dr.select(on, a, b) for a, b in zip(pm, p)]
        nv = [dr.select(on, a, b) for a, b in zip(nm, nv)]
    return p, nv


# ---------------------------------------------------------------------------
# the quadratic form F(b) = bᵀ M b
# ---------------------------------------------------------------------------

def _form(p, nv, camera) -> list:
    """M[i][j] = n_i · (c − w p_j) (see :meth:`Camera.to_viewer`):
    F(b) = Σ_ij b_i b_j M_ij on the face."""
    v = [camera.to_viewer(q) for q in p]
    return [[dr.dot(nv[i], v[j]) for j in range(3)] for i in range(3)]


def _quad(M, x, y):
    """xᵀ M y for barycentric-like triples ``x``, ``y``."""
    return sum(x[i] * (M[i][0] * y[0] + M[i][1] * y[1] + M[i][2] * y[2]) for i in range(3))


def _changes_sign(M) -> mi.Bool:
    """Whether F = bᵀMb takes both signs on the triangle: its extremes are at
    the corners, at the stationary points along the edges, or at the
    stationary point inside (all three kinds are checked)."""
    vals = [M[i][i] for i in range(3)]
    ok = [mi.Bool(True)] * 3
    for i, j in ((0, 1), (1, 2), (2, 0)):
        a, b, m = M[i][i], M[j][j], 0.5 * (M[i][j] + M[j][i])
        den = a - 2 * m + b
        t = (a - m) / den
        vals.append(a - dr.square(a - m) / den)
        ok.append((t > 0) & (t < 1) & (den != 0))
    # inside: b* = S⁻¹1 / 1ᵀS⁻¹1 for the symmetric part S, F* = 1 / 1ᵀS⁻¹1
    S = [[0.5 * (M[i][j] + M[j][i]) for j in range(3)] for i in range(3)]
    cof = [[S[(i + 1) % 3][(j + 1) % 3] * S[(i + 2) % 3][(j + 2) % 3]
            - S[(i + 1) % 3][(j + 2) % 3] * S[(i + 2) % 3][(j + 1) % 3] for j in range(3)]
           for i in range(3)]
    y = [cof[0][i] + cof[1][i] + cof[2][i] for i in range(3)]   # adj(S) 1 (S symmetric)
    total = y[0] + y[1] + y[2]
    det = S[0][0] * cof[0][0] + S[0][1] * cof[0][1] + S[0][2] * cof[0][2]
    vals.append(det / total)
    ok.append((total != 0) & (y[0] * total >= 0) & (y[1] * total >= 0) & (y[2] * total >= 0))
    lo, hi = mi.Float(dr.inf), mi.Float(-dr.inf)
    for v, o in zip(vals, ok):
        o = o & dr.isfinite(v)
        lo = dr.select(o, dr.minimum(lo, v), lo)
        hi = dr.select(o, dr.maximum(hi, v), hi)
    return (lo < 0) & (hi > 0)


def _chord(h, z, line, camera):
    """Where the film line ``u·m = line`` crosses the projected face (corner
    offsets ``h``, depths ``z``): barycentrics of the two crossings on the
    face's edges (perspective-correct), and whether there are two."""
    ends, found = [], []
    for i, j in ((0, 1), (1, 2), (2, 0)):
        t = (line - h[i]) / (h[j] - h[i])          # film parameter on edge i → j
        hit = (t >= 0) & (t < 1)
        s = camera.segment_parameter(t, z[i], z[j])   # 3D parameter
        b = [mi.Float(0.0)] * 3
        b[i], b[j] = 1 - s, s
        ends.append(b)
        found.append(hit)
    # first crossing: the first edge that is hit; second: the last one
    first = [dr.select(found[0], ends[0][q], dr.select(found[1], ends[1][q], ends[2][q]))
             for q in range(3)]
    last = [dr.select(found[2], ends[2][q], dr.select(found[1], ends[1][q], ends[0][q]))
            for q in range(3)]
    count = sum(dr.select(f, 1, 0) for f in found)
    return first, last, count >= 2


def _pick_root(A, B, C, ξ):
    """One root of A σ² + B σ + C in [0, 1] chosen uniformly among those
    there, and their number (0-2); numerically stable for small A."""
    disc = dr.square(B) - 4 * A * C
    q = -0.5 * (B + dr.copysign(dr.sqrt(dr.maximum(disc, 0)), B))
    r1, r2 = q / A, C / q
    ok1 = (disc >= 0) & (r1 >= 0) & (r1 <= 1) & dr.isfinite(r1)
    ok2 = (disc >= 0) & (r2 >= 0) & (r2 <= 1) & dr.isfinite(r2)
    n = dr.select(ok1, 1, 0) + dr.select(ok2, 1, 0)
    take1 = ok1 & (~ok2 | (ξ < 0.5))
    return dr.select(take1, r1, r2), n


def _film_gradient(camera, p, nv, bary, x, depth) -> mi.Vector2f:
    """∇_u F at the face point ``x`` (barycentrics ``bary``, camera depth
    ``depth``), F restricted to the face plane and seen through the film
    (scene units per pixel); and the in-plane gradient ∇_x F (unitless)."""
    k = _inv_size(p)
    nf = dr.cross((p[1] - p[0]) * k, (p[2] - p[0]) * k)     # unitless
    nn = dr.squared_norm(nf)
    opposite = ((p[2] - p[1]) * k, (p[0] - p[2]) * k, (p[1] - p[0]) * k)
    N = bary[0] * nv[0] + bary[1] * nv[1] + bary[2] * nv[2]
    # in-plane gradient of F(x) = N(x)·(c − w x); ∇b_i = k (nf × opposite_i) / |nf|²
    to_viewer = camera.to_viewer(x)
    G = -camera.w * N
    for i in range(3):
        G += dr.cross(nf, opposite[i]) * (k / nn) * dr.dot(nv[i], to_viewer)
    g = G - dr.dot(G, nf) / nn * nf
    # x(u) on the camera ray through u, kept on the plane: dF/du_k = g·∂x/∂u_k,
    # ∂x/∂u_k the move at fixed depth projected along the ray onto the plane
    d = -to_viewer
    w = g - dr.dot(g, d) / dr.dot(nf, d) * nf
    du, dv = camera.point_derivatives(depth)
    return mi.Vector2f(dr.dot(w, du), dr.dot(w, dv)), g


def _inv_size(p) -> mi.Float:
    """1 / (a detached length of the face with corners ``p``): its largest
    edge-vector component. Face vectors times this are unitless, O(1).

    The barycentric and plane formulas below are ratios of products of
    face vectors (|n|² = length⁴ in the denominator, and its square,
    length⁸, in the derivative of the quotient): on raw positions these
    leave float32's range (a face 1e-6 across gives 1e-48, one 1e6 across
    1e48, and the gradient turns to 0 or inf). On the rescaled vectors the
    same ratios stay O(1); the rescaling is detached, and the results do not
    depend on it."""
    e1, e2 = dr.detach(p[1] - p[0]), dr.detach(p[2] - p[0])
    m = dr.maximum(dr.maximum(dr.abs(e1.x), dr.abs(e1.y)), dr.abs(e1.z))
    m = dr.maximum(m, dr.maximum(dr.maximum(dr.abs(e2.x), dr.abs(e2.y)), dr.abs(e2.z)))
    return dr.select(m > 0, dr.rcp(m), 0.0)


def _plane_barycentrics(p, x) -> list:
    """Barycentrics (face corner order) of the projection of ``x`` onto the
    plane of the face with corners ``p`` (attached if they are); computed
    on unitless face vectors (see :func:`_inv_size`)."""
    k = _inv_size(p)
    e1, e2, w = (p[1] - p[0]) * k, (p[2] - p[0]) * k, (x - p[0]) * k
    nf = dr.cross(e1, e2)
    nn = dr.squared_norm(nf)
    b1 = dr.dot(nf, dr.cross(w, e2)) / nn
    b2 = dr.dot(nf, dr.cross(e1, w)) / nn
    return [1 - b1 - b2, b1, b2]


def _on_face(p, x) -> tuple[list, mi.Point3f]:
    """Barycentrics of the point of the face plane nearest ``x``, clamped
    into the triangle, and that point."""
    b = [dr.maximum(w, 0) for w in _plane_barycentrics(p, x)]
    total = b[0] + b[1] + b[2]
    b = [w / total for w in b]
    return b, b[0] * p[0] + b[1] * p[1] + b[2] * p[2]


def _value_on_ray(p, nv, ray: mi.Ray3f, camera) -> mi.Float:
    """F at the point where ``ray`` meets the plane of the face (corners
    ``p``, vertex normals ``nv``), attached if they are."""
    k = _inv_size(p)
    nf = dr.cross((p[1] - p[0]) * k, (p[2] - p[0]) * k)     # unitless normal
    x = ray(dr.dot(nf, p[0] - ray.o) / dr.dot(nf, ray.d))
    b = _plane_barycentrics(p, x)
    N = b[0] * nv[0] + b[1] * nv[1] + b[2] * nv[2]
    return dr.dot(N, camera.to_viewer(x))
