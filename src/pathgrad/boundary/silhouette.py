"""Silhouette geometry shared by the boundary estimators, written once.

An edge with faces 0 and 1 (normals ``n0``, ``n1``, of any length) seen
from a viewpoint ``c`` (the camera, a light, a shading point):

* *side signs* ``s_k = n_k · (c − p)`` for a point ``p`` on the edge: face k
  is turned towards ``c`` where ``s_k > 0``;
* a *fold* (a silhouette seen from ``c``) is an open edge or one whose faces
  turn opposite ways, ``s0 s1 < 0``;
* a *crease* is an edge across which the shading normal jumps (see
  :mod:`pathgrad.boundary.edges`); it matters where its faces bend
  (``cos_bend < 1``) and, on a closed mesh, where not both faces turn away;
* the edge point is *unoccluded* from ``c`` if the first hit along the ray
  towards it is no nearer than the point itself, or is one of the edge's own
  faces (rays that graze them at the edge are numerically unreliable);
* segments are clipped to boxes by Liang-Barsky (:func:`clip_segment`);
* each *side* of the edge's image shows the adjacent face whose third corner
  lies on that side; a side covered by both faces (a fold) shows the one
  turned towards ``c``; a side with no face shows what lies behind.

Edge endpoints and faces are addressed as in
:class:`pathgrad.boundary.edges.EdgeArrays` (``slot`` packs the corner slots
of the two endpoints in both faces).
"""

from __future__ import annotations

import drjit as dr
import mitsuba as mi
import numpy as np

#: creases whose faces bend by less than this (1 - cos) count as flat
FLAT_COS = 1e-6
#: relative distance within which a hit counts as the edge point itself
REL_DIST_TOL = 1e-4
#: offset of visibility rays off their surface, relative to the size of the
#: coordinates and the distance to the target (Mitsuba's RayEpsilon, 1500 x
#: 2^-24 = 8.9e-5; its spawn_ray adds that much as an absolute floor, in
#: scene units)
RAY_EPS = 1500 * 2.0 ** -24


def side_signs(n0, n1, p, viewpoint) -> tuple[mi.Float, mi.Float]:
    """``(n0 · (c − p), n1 · (c − p))``: positive where face k turns towards
    the viewpoint ``c``."""
    return dr.dot(n0, viewpoint - p), dr.dot(n1, viewpoint - p)


def is_fold(is_open, s0, s1, inclusive: bool = False) -> mi.Bool:
    """Open edge, or faces turned opposite ways (``s0 s1 < 0``; ``<= 0`` with
    ``inclusive``, which also keeps edges seen exactly edge-on).

    Compares signs instead of forming the product: with cross-product
    normals ``s_k`` has units of length³, and at 1e-6 scene units the
    product (length⁶, 1e-36 and less) underflows to 0 in float32."""
    if inclusive:
        return is_open | (s0 <= 0) & (s1 >= 0) | (s0 >= 0) & (s1 <= 0)
    return is_open | (s0 < 0) & (s1 > 0) | (s0 > 0) & (s1 < 0)


def unit(v: mi.Vector3f) -> mi.Vector3f:
    """``v / |v|`` (0 for a zero vector), scale-free: ``v`` is divided by its
    largest component before it is squared. A face normal from a cross
    product has units of length², and ``dr.normalize`` squares it again
    (length⁴): that leaves float32's range for edges shorter than about
    1e-9 or longer than 1e9 scene units."""
    m = dr.maximum(dr.maximum(dr.abs(v.x), dr.abs(v.y)), dr.abs(v.z))
    v = v * dr.select(m > 0, dr.rcp(m), 0.0)
    return v * dr.select(m > 0, dr.rsqrt(dr.squared_norm(v)), 0.0)


def cos_bend(n0, n1) -> mi.Float:
    """Cosine of the angle between the two face normals (of any length)."""
    return dr.dot(unit(n0), unit(n1))


def is_bent(is_open, cos) -> mi.Bool:
    """Open, or faces not coplanar: the edge can hide something."""
    return is_open | (cos < 1 - FLAT_COS)


def is_visible_crease(crease, closed, cos, s0, s1) -> mi.Bool:
    """A crease with bent faces that is not hidden at the back of a closed
    mesh (both faces turned away from the viewpoint)."""
    return crease & (cos < 1 - FLAT_COS) & ~(closed & (s0 < 0) & (s1 < 0))


def own_face(pi: mi.PreliminaryIntersection3f, shape, f0, f1=None) -> mi.Bool:
    """The hit ``pi`` is face ``f0`` (or ``f1``) of ``shape``."""
    same = pi.prim_index == f0
    if f1 is not None:
        same |= pi.prim_index == f1
    return (pi.shape == shape) & same


def unoccluded(pi: mi.PreliminaryIntersection3f, hit_dist, dist, own) -> mi.Bool:
    """Nothing nearer than ``dist`` along the ray: no hit, a hit at distance
    ``hit_dist`` no nearer than the point (to ``REL_DIST_TOL``), or a hit on
    the point's own face (``own``, see :func:`own_face`)."""
    return ~pi.is_valid() | (hit_dist >= dist * (1 - REL_DIST_TOL)) | own


def visibility_ray(si: mi.SurfaceInteraction3f, ω: mi.Vector3f, r: mi.Float) -> mi.Ray3f:
    """The ray from the surface point ``si`` in direction ``ω`` towards a
    point at distance ``r``, its origin lifted off the surface along the
    geometric normal (to ω's side) by ``RAY_EPS (max|p| + r)``: scale-free.
    ``si.spawn_ray`` lifts by ``RAY_EPS (1 + max|p|)``, whose absolute part
    (8.9e-5 scene units) is 9% of a scene 1e-3 across and 89 times one 1e-6
    across: visibility would be tested along a ray far from the point."""
    p, n = si.p, si.n
    mag = RAY_EPS * (dr.maximum(dr.maximum(dr.abs(p.x), dr.abs(p.y)), dr.abs(p.z)) + r)
    return mi.Ray3f(dr.fma(dr.mulsign(mag, dr.dot(n, ω)), n, p), ω)


def side_face(side0, side1, sign, is_open, facing0, facing1) -> tuple[mi.Bool, mi.Bool]:
    """Which adjacent face the ``sign`` side of the edge shows.

    ``side_k``: signed offset of face k's third corner from the edge, along
    the edge normal used for the sides; ``facing_k``: face k is turned
    towards the viewpoint. Returns ``(use1, has_face)``: the side shows face
    1 (else face 0), and the side shows a face at all."""
    on0 = side0 * sign > 0
    on1 = (side1 * sign > 0) & ~is_open
    use1 = on1 & (~on0 | (facing1 & ~facing0))
    return use1, on0 | on1


def face_barycentrics(slots, use1, w0, w1, w_opp) -> list:
    """Barycentric coordinates, in face corner order, of the point with
    weights ``w0``, ``w1`` on the edge's endpoints and ``w_opp`` on the
    face's third corner, in face 1 where ``use1`` else face 0."""
    k = dr.select(use1, 1, 0)
    j0 = (slots >> (4 * k)) & 3          # corner slot of endpoint 0
    j1 = (slots >> (4 * k + 2)) & 3      # corner slot of endpoint 1
    return [dr.select(j0 == m, w0, dr.select(j1 == m, w1, w_opp)) for m in range(3)]


def _bound(b):
    return float(b) if isinstance(b, (int, float, np.floating, np.integer)) else b


def clip_segment(a, b, lo, hi) -> tuple[mi.Float, mi.Float]:
    """Liang-Barsky: the parameter range [t0, t1] of the segment a -> b that
    lies inside the box [lo, hi]; empty where t0 >= t1. In 2D (``a``, ``b``
    points; ``lo``, ``hi`` per-axis pairs) or in 1D (``a``, ``b`` Floats;
    ``lo``, ``hi`` numbers or Floats)."""
    if dr.size_v(type(a)) == 2:
        axes = [(a[i], b[i] - a[i], lo[i], hi[i]) for i in range(2)]
    else:
        axes = [(a, b - a, lo, hi)]
    t0, t1 = mi.Float(0), mi.Float(1)
    for a_k, d_k, lo_k, hi_k in axes:
        for bound, sign in ((_bound(lo_k), -1.0), (_bound(hi_k), 1.0)):
            # inside: sign * (a + t d - bound) <= 0
            num = sign * (bound - a_k)
            den = sign * d_k
            t = num / den
            t0 = dr.select(den < 0, dr.maximum(t0, t), t0)
            t1 = dr.select(den > 0, dr.minimum(t1, t), t1)
            t1 = dr.select((den == 0) & (num < 0), -1.0, t1)
    return t0, t1
