"""Silhouette geometry (boundary.silhouette) on hand-made edge
configurations, and the device-side discrete distribution."""
import drjit as dr
import mitsuba as mi
import numpy as np
import pytest

import pathgrad
from pathgrad.boundary import silhouette as sil
from pathgrad.boundary.edges import EdgeArrays
from pathgrad.sampling import DiscreteDistribution


def V(*xyz):
    return mi.Vector3f(*xyz)


def P(*xyz):
    return mi.Point3f(*xyz)


def roof():
    """Two triangles sharing the edge (0,0,0)-(1,0,0), bent like a roof:
    face 0 slopes up towards +z... normals n0 = (0, 1, 1), n1 = (0, 1, -1)."""
    return V(0, 1, 1), V(0, 1, -1)


def lanes(mask) -> list:
    return [bool(b) for b in np.array(mask).ravel()]


def test_fold_depends_on_viewpoint():
    n0, n1 = roof()
    p = P(0.5, 0, 0)
    above, front, grazing = P(0.5, 5, 0), P(0.5, 0.2, 5), P(0.5, 1, 1)
    for c, fold in ((above, False), (front, True), (grazing, False)):
        s0, s1 = sil.side_signs(n0, n1, p, c)
        assert lanes(sil.is_fold(mi.Bool(False), s0, s1)) == [fold]
    # exactly edge-on to face 0 (s0 = 0): a fold only when inclusive
    s0, s1 = sil.side_signs(n0, n1, p, P(0.5, 1, -1))
    assert float(s0[0]) == 0
    assert lanes(sil.is_fold(mi.Bool(False), s0, s1)) == [False]
    assert lanes(sil.is_fold(mi.Bool(False), s0, s1, inclusive=True)) == [True]
    # an open edge is a fold from everywhere
    s0, s1 = sil.side_signs(n0, n0, p, above)
    assert lanes(sil.is_fold(mi.Bool(True), s0, s1)) == [True]


def test_bend_and_crease_visibility():
    n0, n1 = roof()
    flat = V(0, 0, 2)
    assert float(sil.cos_bend(n0, n1)[0]) == pytest.approx(0.0, abs=1e-6)
    assert lanes(sil.is_bent(mi.Bool(False), sil.cos_bend(flat, flat))) == [False]
    assert lanes(sil.is_bent(mi.Bool(True), sil.cos_bend(flat, flat))) == [True]
    assert lanes(sil.is_bent(mi.Bool(False), sil.cos_bend(n0, n1))) == [True]
    cos = sil.cos_bend(n0, n1)
    for (s0, s1), closed, visible in (((1, 1), True, True), ((-1, -1), True, False),
                                      ((-1, -1), False, True), ((1, -1), True, True)):
        got = sil.is_visible_crease(mi.Bool(True), mi.Bool(closed), cos, mi.Float(s0), mi.Float(s1))
        assert lanes(got) == [visible], (s0, s1, closed)
    # a coplanar crease never counts, a non-crease never counts
    assert lanes(sil.is_visible_crease(mi.Bool(True), mi.Bool(False), sil.cos_bend(flat, flat),
                                       mi.Float(1), mi.Float(1))) == [False]
    assert lanes(sil.is_visible_crease(mi.Bool(False), mi.Bool(False), cos, mi.Float(1),
                                       mi.Float(1))) == [False]


def test_side_face_choice():
    T, F = mi.Bool(True), mi.Bool(False)
    # third corners on opposite sides: each side shows its own face
    assert lanes(sil.side_face(mi.Float(-1), mi.Float(1), +1.0, F, T, T)[0]) == [True]
    assert lanes(sil.side_face(mi.Float(-1), mi.Float(1), -1.0, F, T, T)[0]) == [False]
    # both faces on the + side (a fold): the one turned towards the viewer
    for facing0, facing1, use1 in ((T, F, False), (F, T, True)):
        u1, has = sil.side_face(mi.Float(1), mi.Float(2), +1.0, F, facing0, facing1)
        assert lanes(u1) == [use1] and lanes(has) == [True]
    # ... and nothing on the - side
    assert lanes(sil.side_face(mi.Float(1), mi.Float(2), -1.0, F, T, F)[1]) == [False]
    # an open edge has no face 1, whatever its (copied) corner says
    u1, has = sil.side_face(mi.Float(-1), mi.Float(1), +1.0, T, T, T)
    assert lanes(u1) == [False] and lanes(has) == [False]


def test_face_barycentrics_decode_the_slots():
    """On a real mesh with scrambled corner orders, the point with weights
    (w0, w1, w_opp) on (endpoint 0, endpoint 1, third corner) must be the
    same point when rebuilt from the face's corners in their own order."""
    verts = np.array([[0, 0, 0], [1, 0, 0], [0.3, 1, 0.2], [0.6, -1, 0.4]], float)
    faces = np.array([[2, 0, 1], [1, 0, 3]])
    mesh = pathgrad.shapes.mesh_from_arrays("m", verts, faces, smooth=False)
    scene = mi.load_dict({"type": "scene", "m": mesh})
    m = scene.shapes()[0]
    e = EdgeArrays([m])
    pos = np.array(m.vertex_positions_buffer()).reshape(-1, 3)
    F = np.array(m.faces_buffer()).reshape(-1, 3)
    p0, p1 = np.array(e.p0).T, np.array(e.p1).T
    o = [np.array(e.o0).T, np.array(e.o1).T]
    f = [np.array(e.f0), np.array(e.f1)]
    w0, w1, wo = 0.2, 0.5, 0.3
    for use1 in (False, True):
        k = int(use1)
        bary = sil.face_barycentrics(e.slot, mi.Bool(use1), mi.Float(w0), mi.Float(w1), mi.Float(wo))
        bary = np.stack([np.array(b) * np.ones(e.count) for b in bary], 1)
        expect = w0 * p0 + w1 * p1 + wo * o[k]
        got = np.einsum("ej,ejk->ek", bary, pos[F[f[k]]])
        np.testing.assert_allclose(got, expect, atol=1e-6)


def test_own_face_and_unoccluded():
    scene = mi.load_dict({"type": "scene", "r": {"type": "rectangle"}})
    shape = scene.shapes()[0]
    ray = mi.Ray3f(P(0.2, 0.1, 2), V(0, 0, -1))
    pi = scene.ray_intersect_preliminary(ray)
    assert float(pi.t[0]) == pytest.approx(2)
    ptr = mi.ShapePtr(shape)
    own = sil.own_face(pi, ptr, pi.prim_index)
    other = sil.own_face(pi, ptr, pi.prim_index + 1, pi.prim_index + 2)
    assert lanes(own) == [True] and lanes(other) == [False]
    for dist, own_m, expect in ((1.9, other, True),      # hit beyond the point
                                (2.0, other, True),      # the point itself
                                (3.0, other, False),     # occluded
                                (3.0, own, True)):       # occluded by its own face
        assert lanes(sil.unoccluded(pi, pi.t, mi.Float(dist), own_m)) == [expect]
    miss = scene.ray_intersect_preliminary(mi.Ray3f(P(5, 5, 2), V(0, 0, -1)))
    assert lanes(sil.unoccluded(miss, miss.t, mi.Float(3.0), mi.Bool(False))) == [True]


def brute_clip(a, b, lo, hi):
    t = np.linspace(0, 1, 100001)
    pts = a[None] + t[:, None] * (b - a)[None]
    inside = np.all((pts >= lo) & (pts <= hi), 1)
    return (t[inside].min(), t[inside].max()) if inside.any() else None


@pytest.mark.parametrize("a,b", [((1, 1), (2, 3)), ((-2, 1), (6, 2)), ((2, -3), (2, 9)),
                                 ((-1, -1), (-1, 9)), ((-3, 5), (9, -1)), ((7, 7), (9, 9)),
                                 ((0, 2), (4, 2))])
def test_clip_segment_matches_brute_force(a, b):
    lo, hi = np.array([0.0, 0.0]), np.array([4.0, 5.0])
    a, b = np.array(a, float), np.array(b, float)
    t0, t1 = sil.clip_segment(mi.Point2f(*map(float, a)), mi.Point2f(*map(float, b)), lo, hi)
    t0, t1 = float(t0[0]), float(t1[0])
    ref = brute_clip(a, b, lo, hi)
    if ref is None:
        assert t0 >= t1
    else:
        assert t0 == pytest.approx(ref[0], abs=1e-4) and t1 == pytest.approx(ref[1], abs=1e-4)
    # the same along x alone, in 1D with per-lane bounds
    t0, t1 = sil.clip_segment(mi.Float(a[0]), mi.Float(b[0]), mi.Float(lo[0]), mi.Float(hi[0]))
    ref = brute_clip(a[:1], b[:1], lo[:1], hi[:1])
    if ref is None:
        assert float(t0[0]) >= float(t1[0])
    else:
        assert float(t0[0]) == pytest.approx(ref[0], abs=1e-4)
        assert float(t1[0]) == pytest.approx(ref[1], abs=1e-4)


def test_device_distribution_matches_mitsuba_and_survives_no_mass():
    rng = np.random.default_rng(0)
    w = rng.random(500).astype(np.float32)
    w[rng.random(500) < 0.5] = 0
    u = mi.Float(rng.random(4000).astype(np.float32))
    ours, theirs = DiscreteDistribution(mi.Float(w)), mi.DiscreteDistribution(mi.Float(w))
    i0, r0 = ours.sample_reuse(u)
    i1, r1 = theirs.sample_reuse(u)
    np.testing.assert_array_equal(np.array(i0), np.array(i1))
    np.testing.assert_array_equal(np.array(r0), np.array(r1))
    np.testing.assert_array_equal(np.array(ours.eval_pmf_normalized(i0)),
                                  np.array(theirs.eval_pmf_normalized(i1)))
    assert np.all(w[np.array(i0)] > 0)
    # no mass: probability 0 everywhere, finite reused numbers, no exception
    empty = DiscreteDistribution(dr.zeros(mi.Float, 7))
    i, r = empty.sample_reuse(u)
    assert np.all(np.array(empty.eval_pmf_normalized(i)) == 0)
    assert np.all(np.isfinite(np.array(r)))
