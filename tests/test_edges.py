"""Edge topology: welding, open / non-manifold / degenerate cases, caching."""

import mitsuba as mi
import numpy as np
import pytest

import pathgrad
from pathgrad.boundary.edges import build_edge_table, edge_table


def test_cube_split_vertices_are_welded():
    cube = mi.load_dict({"type": "cube"})
    assert cube.vertex_count() == 24
    t = edge_table(cube)
    # 12 cube edges + 6 face diagonals, none open once welded
    assert t.count == 18 and t.n_open == 0
    # the 12 real edges join faces with split normals: seams
    assert t.seam.sum() == 12


def test_unwelded_cube_would_be_all_open():
    """What welding prevents: on raw indices every edge of the split cube is
    a border (this is the bug the weld step exists for)."""
    cube = mi.load_dict({"type": "cube"})
    V = np.array(cube.vertex_positions_buffer()).reshape(-1, 3)
    F = np.array(cube.faces_buffer()).reshape(-1, 3)
    jitter = V + np.arange(len(V))[:, None] * 1e-3   # break exact coincidence
    t = build_edge_table(jitter, F)
    assert t.n_open == 24


def test_closed_sphere_and_open_grid():
    t = edge_table(pathgrad.shapes.icosphere(2))
    assert t.count == 480 and t.n_open == 0
    g = edge_table(pathgrad.shapes.grid(4))
    assert g.count == 4 * 5 * 2 + 16 and g.n_open == 16


def test_non_manifold_edge_kept_once_per_face():
    V = np.array([[0, 0, 0], [1, 0, 0], [0, 1, 0], [0, 0, 1], [0, -1, 0.]])
    F = np.array([[0, 1, 2], [0, 1, 3], [0, 1, 4]])
    t = build_edge_table(V, F)
    assert t.n_nonmanifold == 1
    shared = (np.minimum(t.v0, t.v1) == 0) & (np.maximum(t.v0, t.v1) == 1)
    assert shared.sum() == 3 and (t.f1[shared] == -1).all()


def test_degenerate_faces_warn_and_are_skipped():
    V = np.array([[0, 0, 0], [1, 0, 0], [0, 1, 0], [2, 0, 0.]])
    F = np.array([[0, 1, 2], [0, 1, 3]])   # the second face is a line
    with pytest.warns(UserWarning, match="degenerate"):
        t = build_edge_table(V, F, name="bad")
    assert t.n_degenerate == 1 and t.count == 3


def test_corner_slots_match_endpoints():
    for mesh in (mi.load_dict({"type": "cube"}), pathgrad.shapes.icosphere(1)):
        t = edge_table(mesh)
        F = np.array(mesh.faces_buffer()).reshape(-1, 3)
        V = np.array(mesh.vertex_positions_buffer()).reshape(-1, 3)
        for k, f in ((0, t.f0), (1, np.where(t.f1 >= 0, t.f1, t.f0))):
            np.testing.assert_allclose(V[F[f, t.local[:, k, 0]]], V[t.v0])
            np.testing.assert_allclose(V[F[f, t.local[:, k, 1]]], V[t.v1])


def test_table_is_cached_until_faces_change():
    mesh = pathgrad.shapes.icosphere(1)
    a = edge_table(mesh)
    assert edge_table(mesh) is a
    params = mi.traverse(mesh)
    F = np.array(params["faces"]).reshape(-1, 3)
    params["faces"] = mi.UInt32(F[:, ::-1].ravel().astype(np.uint32))   # flip orientation
    params.update()
    assert edge_table(mesh) is not a
