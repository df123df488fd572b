"""Edge topology of triangle meshes, for silhouette edge sampling.

For each mesh we list its unique edges with their adjacent faces, built from
the vertex and face buffers with numpy:

* vertices are **welded by position** first (UV seams, split normals and
  meshes like Mitsuba's built-in ``cube``, whose 24 vertices are split at
  every corner, would otherwise show false open edges);
* an edge with one adjacent face is **open** (a mesh border): always a
  silhouette candidate;
* an edge with two faces is a silhouette where one face turns towards the
  viewpoint and the other away (tested at every render with the current
  positions, so edges that start flat and bend during an optimisation are
  found; two coplanar faces never pass the test);
* an edge shared by more than two faces (**non-manifold**) is kept once per
  adjacent face, as an open edge of that face: it is always a candidate, and
  the two-sided radiance difference measured across it decides whether it
  contributes (a wasted sample at worst, never a wrong one);
* an edge whose two faces are shaded with different normals (every edge of
  a flat-shaded mesh, and the seams of a mesh with split vertex normals,
  such as the corners of ``cube``) is a **crease**: where the two faces are
  not coplanar, radiance can jump across it even though nothing is occluded,
  so it is a candidate wherever it is visible;
* faces of zero area (**degenerate**) have no normal: they are left out, and
  a warning names the mesh.

The table depends on the faces only, so it is cached per mesh and rebuilt
when the face buffer changes; positions are gathered (attached to AD) from
the mesh at every render.
"""

from __future__ import annotations

import dataclasses
import warnings

import drjit as dr
import mitsuba as mi
import numpy as np


@dataclasses.dataclass
class EdgeTable:
    """Unique edges of one mesh (E edges), as indices into its own buffers.

    ``v0, v1``: endpoint vertex indices (E,), ``f0``: one adjacent face (E,),
    ``f1``: the other adjacent face or -1 for open edges (E,), ``seam``: the
    two faces use different vertex copies (split normals or UVs) (E,),
    ``local``: (E, 2, 2) corner slots (0-2) of the endpoints v0, v1 within
    faces f0 and f1 (``local[e, k, j]``: slot of endpoint j in face k; the
    face's third corner is slot ``3 - local[e, k, 0] - local[e, k, 1]``)."""

    v0: np.ndarray
    v1: np.ndarray
    f0: np.ndarray
    f1: np.ndarray
    seam: np.ndarray = None
    local: np.ndarray = None
    n_degenerate: int = 0
    n_nonmanifold: int = 0

    @property
    def count(self) -> int:
        return len(self.v0)

    @property
    def n_open(self) -> int:
        return int(np.sum(self.f1 < 0))


def weld(positions: np.ndarray, rel_tol: float = 1e-6) -> np.ndarray:
    """Map each vertex to a representative of all vertices at the same
    position (within ``rel_tol`` of the bounding box diagonal). Returns the
    representative index of every vertex, shape (V,)."""
    if len(positions) == 0:
        return np.zeros(0, np.int64)
    extent = float(np.linalg.norm(positions.max(0) - positions.min(0))) or 1.0
    q = np.round(positions / (extent * rel_tol)).astype(np.int64)
    _, first, inverse = np.unique(q, axis=0, return_index=True, return_inverse=True)
    return first[inverse.ravel()]


def build_edge_table(positions: np.ndarray, faces: np.ndarray, name: str = "mesh") -> EdgeTable:
    """Build the :class:`EdgeTable` of a mesh from ``positions`` (V, 3) and
    ``faces`` (F, 3)."""
    positions = np.asarray(positions, np.float64).reshape(-1, 3)
    faces = np.asarray(faces, np.int64).reshape(-1, 3)
    rep = weld(positions)

    a, b, c = (positions[faces[:, i]] for i in range(3))
    area2 = np.linalg.norm(np.cross(b - a, c - a), axis=1)
    extent = float(np.linalg.norm(positions.max(0) - positions.min(0))) if len(positions) else 1.0
    wf = rep[faces]
    degenerate = (area2 <= (extent * 1e-7) ** 2) | (wf[:, 0] == wf[:, 1]) | \
        (wf[:, 1] == wf[:, 2]) | (wf[:, 2] == wf[:, 0])
    n_degenerate = int(degenerate.sum())
    if n_degenerate:
        warnings.warn(f"pathgrad: mesh '{name}' has {n_degenerate} degenerate (zero-area) "
                      "face(s); they are ignored for silhouette edges. Clean the mesh "
                      "(e.g. merge close vertices, drop zero-area faces) to silence this.",
                      stacklevel=3)
    keep = np.nonzero(~degenerate)[0]

    # three edges per face, keyed by welded endpoints (sorted)
    fi = np.repeat(keep, 3)
    slot = np.tile(np.arange(3), len(keep))          # edge (slot, slot+1) of its face
    lo = faces[keep][:, [0, 1, 2]].ravel()
    hi = faces[keep][:, [1, 2, 0]].ravel()
    wl, wh = rep[lo], rep[hi]
    key = np.stack([np.minimum(wl, wh), np.maximum(wl, wh)], 1)
    order = np.lexsort((key[:, 1], key[:, 0]))
    key, fi, lo, hi, slot = key[order], fi[order], lo[order], hi[order], slot[order]
    if len(key) == 0:
        z = np.zeros(0, np.int64)
        return EdgeTable(z, z, z, z, np.zeros(0, bool), np.zeros((0, 2, 2), np.int64),
                         n_degenerate, 0)
    new = np.ones(len(key), bool)
    new[1:] = np.any(key[1:] != key[:-1], axis=1)
    group = np.cumsum(new) - 1
    counts = np.bincount(group)
    starts = np.nonzero(new)[0]

    two = counts == 2
    one = counts == 1
    many = counts > 2
    s2, s1 = starts[two], starts[one]
    v0 = [lo[s2], lo[s1]]
    v1 = [hi[s2], hi[s1]]
    f0 = [fi[s2], fi[s1]]
    f1 = [fi[s2 + 1], np.full(len(s1), -1)]
    same = ((lo[s2] == lo[s2 + 1]) & (hi[s2] == hi[s2 + 1])) | \
        ((lo[s2] == hi[s2 + 1]) & (hi[s2] == lo[s2 + 1]))
    seam = [~same, np.zeros(len(s1), bool)]

    def slots(rows, first):
        """corner slots of endpoints (lo[first], hi[first]) in the face of `rows`"""
        a, b = slot[rows], (slot[rows] + 1) % 3
        aligned = rep[lo[rows]] == rep[lo[first]]
        return np.stack([np.where(aligned, a, b), np.where(aligned, b, a)], -1)

    local = [np.stack([slots(s2, s2), slots(s2 + 1, s2)], 1),
             np.stack([slots(s1, s1), slots(s1, s1)], 1)]
    n_nonmanifold = int(many.sum())
    if n_nonmanifold:
        rows = np.nonzero(np.repeat(many, counts))[0]
        v0.append(lo[rows])
        v1.append(hi[rows])
        f0.append(fi[rows])
        f1.append(np.full(len(rows), -1))
        seam.append(np.zeros(len(rows), bool))
        local.append(np.stack([slots(rows, rows), slots(rows, rows)], 1))
    cat = lambda xs: np.concatenate(xs).astype(np.int64)  # noqa: E731
    table = EdgeTable(cat(v0), cat(v1), cat(f0), cat(f1), np.concatenate(seam), cat(local),
                      n_degenerate, n_nonmanifold)

    return table


# ---------------------------------------------------------------------------
# Per-mesh cache (topology depends on faces only)
# ---------------------------------------------------------------------------

#: id(mesh) -> (signature, table, columns, faces). The entry holds a detached
#: reference to the face buffer (not the mesh, which would keep its scene
#: alive): while it is held its JIT index cannot be reused, so the signature
#: tells a new mesh at the same address from the cached one.
_cache: dict = {}
_MAX_CACHED = 64


def _faces_signature(mesh: mi.Mesh, faces):
    return (mesh.face_count(), mesh.vertex_count(), faces.index, mesh.has_vertex_normals())


def _cached(mesh: mi.Mesh):
    faces_buf = mesh.faces_buffer()
    sig = _faces_signature(mesh, faces_buf)
    hit = _cache.get(id(mesh))
    if hit is not None and hit[0] == sig:
        return hit
    with dr.suspend_grad():
        pos = np.array(mesh.vertex_positions_buffer(), np.float64).reshape(-1, 3)
        faces = np.array(faces_buf, np.int64).reshape(-1, 3)
    table = build_edge_table(pos, faces, name=mesh.id())
    hit = (sig, table, _static_columns(table, faces, not mesh.has_vertex_normals()), faces_buf)
    _cache.pop(id(mesh), None)
    _cache[id(mesh)] = hit
    while len(_cache) > _MAX_CACHED:
        _cache.pop(next(iter(_cache)))
    return hit


def edge_table(mesh: mi.Mesh) -> EdgeTable:
    """The cached :class:`EdgeTable` of ``mesh`` (rebuilt if its faces changed).
    Welding reads the positions when the table is built."""
    return _cached(mesh)[1]


def _static_columns(t: EdgeTable, faces: np.ndarray, flat: bool) -> dict:
    """Per-edge device arrays that depend on the faces only (uploaded once):
    vertex indices of the endpoints, of the corners of both faces and of
    their third corners; face indices; open, crease, closed flags; slots."""
    if t.count == 0:
        return {}
    u32 = lambda a: mi.UInt32(np.asarray(a, np.uint32))  # noqa: E731
    f1 = np.where(t.f1 >= 0, t.f1, t.f0)
    cols = {"v0": u32(t.v0), "v1": u32(t.v1), "f0": u32(t.f0), "f1": u32(f1),
            "open": mi.Bool(t.f1 < 0),
            # shading normals jump across every edge of a flat-shaded mesh,
            # and across the seams of one with split vertex normals
            "crease": mi.Bool((t.f1 >= 0) & (flat | t.seam)),
            "closed": mi.Bool(np.full(t.count, t.n_open == 0 and t.n_nonmanifold == 0)),
            "slot": u32(t.local.reshape(-1, 4) @ np.array([1, 4, 16, 64]))}
    for k, f in ((0, t.f0), (1, f1)):
        cols[f"corners{k}"] = [u32(faces[f, j]) for j in range(3)]
        cols[f"opp{k}"] = u32(faces[f, 3 - t.local[:, k, 0] - t.local[:, k, 1]])
    return cols


# ---------------------------------------------------------------------------
# All edges of several meshes as flat Dr.Jit arrays (per render)
# ---------------------------------------------------------------------------

def concat_lanes(arrays, cls):
    """Concatenate flat or 3-vector Dr.Jit arrays along their lanes."""
    if len(arrays) == 1:
        return arrays[0]
    n = dr.size_v(cls)
    if n > 0:  # nested (Point3f, ...): concatenate each component
        return cls(*[dr.concat([a[i] for a in arrays]) for i in range(n)])
    return dr.concat(arrays)


_TYPES = dict(p0=mi.Point3f, p1=mi.Point3f, n0=mi.Vector3f, n1=mi.Vector3f, o0=mi.Point3f,
              o1=mi.Point3f, f0=mi.UInt32, f1=mi.UInt32, open=mi.Bool, crease=mi.Bool,
              closed=mi.Bool, slot=mi.UInt32, mesh=mi.UInt32, moves=mi.Bool)


class EdgeArrays:
    """The edges of several meshes, as flat arrays (built once per render and
    shared by the boundary estimators).

    ``p0, p1``: endpoint positions (attached); ``n0, n1``: detached face
    normals (``n1 = n0`` for open edges); ``f0, f1``: adjacent faces;
    ``o0, o1``: detached opposite corners of the two faces; ``slot``: corner
    slots of the endpoints in each face (for barycentrics); ``mesh``: index
    of the edge's mesh in ``shapes``; ``moves``: its mesh is one of
    ``moving`` (vertex positions carry gradients). ``count`` is known on the
    host (it comes from the cached tables)."""

    def __init__(self, meshes, moving=()):
        cols = {k: [] for k in _TYPES}
        self.meshes = list(meshes)
        self.moving = list(moving)
        self.shapes = mi.ShapePtr(self.meshes)
        for m_index, mesh in enumerate(self.meshes):
            _, t, static, _ = _cached(mesh)
            if t.count == 0:
                continue
            pos = mesh.vertex_positions_buffer()
            cols["p0"].append(dr.gather(mi.Point3f, pos, static["v0"]))
            cols["p1"].append(dr.gather(mi.Point3f, pos, static["v1"]))
            with dr.suspend_grad():
                fixed = dr.detach(pos)
                for k in (0, 1):
                    c = [dr.gather(mi.Point3f, fixed, i) for i in static[f"corners{k}"]]
                    cols[f"n{k}"].append(dr.cross(c[1] - c[0], c[2] - c[0]))
                    cols[f"o{k}"].append(dr.gather(mi.Point3f, fixed, static[f"opp{k}"]))
            for k in ("f0", "f1", "open", "crease", "closed", "slot"):
                cols[k].append(static[k])
            cols["mesh"].append(dr.full(mi.UInt32, m_index, t.count))
            cols["moves"].append(dr.full(mi.Bool, any(mesh is m for m in self.moving), t.count))
        self.count = sum(dr.width(a) for a in cols["p0"])
        if not self.count:
            return
        for k, v in cols.items():
            setattr(self, k, concat_lanes(v, _TYPES[k]))

    def endpoints(self, idx: mi.UInt32) -> tuple[mi.Point3f, mi.Point3f]:
        """Endpoints of edges ``idx`` (attached unless gradients are suspended)."""
        return dr.gather(mi.Point3f, self.p0, idx), dr.gather(mi.Point3f, self.p1, idx)

    def point(self, idx: mi.UInt32, s: mi.Float) -> mi.Point3f:
        """The point at parameter ``s`` on edges ``idx`` (attached unless
        gradients are suspended: then it is the detached sample point)."""
        q0, q1 = self.endpoints(idx)
        return dr.lerp(q0, q1, s)
