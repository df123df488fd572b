"""Small triangle meshes made in code, for tests, examples and quick scenes.

Each function returns an ``mi.Mesh`` that can be placed in a scene dictionary
(``{'type': 'scene', 'ball': pathgrad.shapes.icosphere(2, bsdf=...)}``).
Positions are in scene units (metres by convention).
"""

from __future__ import annotations

import numpy as np
import mitsuba as mi

__all__ = ["icosphere", "uv_sphere", "grid", "mesh_from_arrays", "write_ply"]


def mesh_from_arrays(name: str, vertices: np.ndarray, faces: np.ndarray,
                     *, smooth: bool = True, uv: np.ndarray | None = None,
                     bsdf: dict | mi.BSDF | None = None,
                     emitter: dict | None = None) -> mi.Mesh:
    """Build an ``mi.Mesh`` from ``vertices`` (V, 3) float and ``faces`` (F, 3)
    int arrays. ``smooth`` gives interpolated vertex normals (else flat faces);
    ``uv`` (V, 2) adds texture coordinates."""
    vertices = np.ascontiguousarray(vertices, dtype=np.float32)
    faces = np.ascontiguousarray(faces, dtype=np.uint32)
    if vertices.ndim != 2 or vertices.shape[1] != 3 or faces.ndim != 2 or faces.shape[1] != 3:
        raise ValueError("vertices must have shape (V, 3) and faces (F, 3)")
    if faces.size and faces.max() >= len(vertices):
        raise ValueError("faces index past the end of the vertex array")
    props = mi.Properties()
    if bsdf is not None:
        props["bsdf"] = bsdf if isinstance(bsdf, mi.BSDF) else mi.load_dict(bsdf)
    if emitter is not None:
        props["emitter"] = emitter if isinstance(emitter, mi.Emitter) else mi.load_dict(emitter)
    mesh = mi.Mesh(name, len(vertices), len(faces), props,
                   has_vertex_normals=smooth, has_vertex_texcoords=uv is not None)
    params = mi.traverse(mesh)
    params["vertex_positions"] = mi.Float(vertices.ravel())
    params["faces"] = mi.UInt32(faces.ravel())
    if uv is not None:
        params["vertex_texcoords"] = mi.Float(np.asarray(uv, np.float32).ravel())
    params.update()
    return mesh


def _icosahedron():
    t = (1 + 5 ** 0.5) / 2
    v = np.array([[-1, t, 0], [1, t, 0], [-1, -t, 0], [1, -t, 0],
                  [0, -1, t], [0, 1, t], [0, -1, -t], [0, 1, -t],
                  [t, 0, -1], [t, 0, 1], [-t, 0, -1], [-t, 0, 1]], float)
    f = np.array([[0, 11, 5], [0, 5, 1], [0, 1, 7], [0, 7, 10], [0, 10, 11],
                  [1, 5, 9], [5, 11, 4], [11, 10, 2], [10, 7, 6], [7, 1, 8],
                  [3, 9, 4], [3, 4, 2], [3, 2, 6], [3, 6, 8], [3, 8, 9],
                  [4, 9, 5], [2, 4, 11], [6, 2, 10], [8, 6, 7], [9, 8, 1]])
    return v / np.linalg.norm(v, axis=1, keepdims=True), f


def icosphere_arrays(level: int = 2) -> tuple[np.ndarray, np.ndarray]:
    """Unit icosphere subdivided ``level`` times: (V, 3) vertices, (F, 3)
    faces, outward-facing counter-clockwise triangles. V = 10·4^level + 2."""
    v, f = _icosahedron()
    verts = [tuple(p) for p in v]
    for _ in range(level):
        cache: dict = {}

        def mid(a, b):
            key = (min(a, b), max(a, b))
            if key not in cache:
                p = (np.array(verts[a]) + np.array(verts[b])) / 2
                verts.append(tuple(p / np.linalg.norm(p)))
                cache[key] = len(verts) - 1
            return cache[key]

        nf = []
        for a, b, c in f:
            ab, bc, ca = mid(a, b), mid(b, c), mid(c, a)
            nf += [[a, ab, ca], [b, bc, ab], [c, ca, bc], [ab, bc, ca]]
        f = np.array(nf)
    return np.array(verts), f


def icosphere(level: int = 2, radius: float = 1.0, center=(0.0, 0.0, 0.0), *,
              name: str = "icosphere", smooth: bool = True,
              bsdf: dict | None = None, emitter: dict | None = None) -> mi.Mesh:
    """A sphere mesh of ``10·4^level + 2`` vertices, ``radius`` and ``center``
    in scene units."""
    v, f = icosphere_arrays(level)
    return mesh_from_arrays(name, v * radius + np.asarray(center, float), f,
                            smooth=smooth, bsdf=bsdf, emitter=emitter)


def uv_sphere_arrays(rings: int = 24, segments: int = 48) -> tuple[np.ndarray, np.ndarray]:
    """Unit sphere of ``rings`` latitude bands and ``segments`` longitude
    sectors, with one vertex at each pole and no seam (vertices are shared
    around every ring): ``(rings - 1) * segments + 2`` vertices."""
    if rings < 2 or segments < 3:
        raise ValueError(f"a UV sphere needs rings >= 2 and segments >= 3, got {rings}, {segments}")
    θ = np.pi * np.arange(1, rings) / rings                 # polar angle of each inner ring
    φ = 2 * np.pi * np.arange(segments) / segments
    ring = np.stack([np.sin(θ)[:, None] * np.cos(φ), np.broadcast_to(np.cos(θ)[:, None], (rings - 1, segments)),
                     np.sin(θ)[:, None] * np.sin(φ)], -1).reshape(-1, 3)
    verts = np.concatenate([[[0, 1, 0]], ring, [[0, -1, 0]]])
    south = len(verts) - 1
    idx = 1 + np.arange((rings - 1) * segments).reshape(rings - 1, segments)
    nxt = np.roll(idx, -1, axis=1)
    faces = [np.stack([np.zeros(segments, int), nxt[0], idx[0]], -1),
             np.stack([idx[-1], nxt[-1], np.full(segments, south)], -1)]
    for r in range(rings - 2):
        a, b, c, d = idx[r], nxt[r], idx[r + 1], nxt[r + 1]
        faces += [np.stack([a, b, c], -1), np.stack([b, d, c], -1)]
    return verts, np.concatenate(faces)


def uv_sphere(rings: int = 24, segments: int = 48, radius: float = 1.0, center=(0.0, 0.0, 0.0),
              *, name: str = "uv_sphere", smooth: bool = True,
              bsdf: dict | None = None, emitter: dict | None = None) -> mi.Mesh:
    """A latitude-longitude sphere mesh (see :func:`uv_sphere_arrays`) of
    ``radius`` and ``center`` in scene units."""
    v, f = uv_sphere_arrays(rings, segments)
    return mesh_from_arrays(name, v * radius + np.asarray(center, float), f,
                            smooth=smooth, bsdf=bsdf, emitter=emitter)


def grid(n: int = 16, size: float = 2.0, height: float = 0.0, *, name: str = "grid",
         smooth: bool = True, bsdf: dict | None = None) -> mi.Mesh:
    """A square ``size`` x ``size`` plane at ``y = height`` made of ``n`` x ``n``
    quads (two triangles each), facing +y, with UVs in [0, 1]^2."""
    u = np.linspace(0.0, 1.0, n + 1)
    uu, vv = np.meshgrid(u, u, indexing="xy")
    verts = np.stack([(uu - 0.5) * size, np.full_like(uu, height), (vv - 0.5) * size], -1)
    idx = np.arange((n + 1) ** 2).reshape(n + 1, n + 1)
    a, b, c, d = idx[:-1, :-1], idx[:-1, 1:], idx[1:, :-1], idx[1:, 1:]
    faces = np.concatenate([np.stack([a, c, b], -1).reshape(-1, 3),
                            np.stack([b, c, d], -1).reshape(-1, 3)])
    uv = np.stack([uu, vv], -1).reshape(-1, 2)
    return mesh_from_arrays(name, verts.reshape(-1, 3), faces, smooth=smooth, uv=uv, bsdf=bsdf)


def write_ply(path: str, vertices: np.ndarray, faces: np.ndarray) -> None:
    """Write a binary little-endian PLY with float32 positions and uint32 faces."""
    vertices = np.ascontiguousarray(vertices, dtype="<f4")
    faces = np.ascontiguousarray(faces, dtype="<u4")
    header = ("ply\nformat binary_little_endian 1.0\n"
              f"element vertex {len(vertices)}\nproperty float x\nproperty float y\n"
              f"property float z\nelement face {len(faces)}\n"
              "property list uchar uint vertex_indices\nend_header\n")
    with open(path, "wb") as fh:
        fh.write(header.encode("ascii"))
        rec = np.empty(len(faces), dtype=[("n", "u1"), ("i", "<u4", (3,))])
        rec["n"] = 3
        rec["i"] = faces
        fh.write(vertices.tobytes())
        fh.write(rec.tobytes())
