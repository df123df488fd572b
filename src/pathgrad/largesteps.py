"""Laplacian-preconditioned vertex parametrisation for shape optimisation.

Following Nicolet, Jacobson and Jakob, "Large Steps in Inverse Rendering of
Geometry" (SIGGRAPH Asia 2021): instead of the vertex positions x (V x 3) the
optimiser updates u = (I + λ L) x, where L is the combinatorial (graph)
Laplacian of the mesh. Mapping back, x = (I + λ L)⁻¹ u, smooths every gradient
step, so that the rendering loss's sparse, silhouette-concentrated gradients
move whole regions of the surface instead of tearing single vertices apart.
The solve uses a sparse Cholesky factorisation from ``cholespy`` (the
package by the paper's authors), factored once per mesh connectivity.

Use it with an Adam optimiser, ideally its ``uniform=True`` variant (the
paper's "uniform Adam", one step size per parameter array)::

    ls = pathgrad.largesteps.LargeSteps(vertices, faces, lam=19)
    opt = mi.ad.Adam(lr=3e-2, uniform=True)
    opt["u"] = ls.to_differential(params[key])
    for it in range(n):
        params[key] = ls.from_differential(opt["u"])   # differentiable
        params.update()
        ...render, loss, dr.backward(loss)...
        opt.step()
"""
from __future__ import annotations

import drjit as dr
import mitsuba as mi
import numpy as np

__all__ = ["LargeSteps", "laplacian_coo"]

_INSTALL = ("pathgrad.largesteps needs the sparse Cholesky solver 'cholespy': "
            "pip install 'pathgrad[examples]' (or: pip install cholespy)")


def laplacian_coo(n_vertices: int, faces: np.ndarray):
    """Combinatorial Laplacian L = D - A of a triangle mesh's vertex graph, as
    COO (rows, cols, values) with int32 indices and float64 values. Vertices
    that no face uses get a zero row (the solve then leaves them in place)."""
    f = np.asarray(faces, np.int64).reshape(-1, 3)
    e = np.concatenate([f[:, [0, 1]], f[:, [1, 2]], f[:, [2, 0]]])
    e = np.sort(e, axis=1)
    e = np.unique(e[e[:, 0] != e[:, 1]], axis=0)            # undirected, no repeats
    i = np.concatenate([e[:, 0], e[:, 1]])
    j = np.concatenate([e[:, 1], e[:, 0]])
    deg = np.bincount(i, minlength=n_vertices).astype(np.float64)
    rows = np.concatenate([np.arange(n_vertices), i]).astype(np.int32)
    cols = np.concatenate([np.arange(n_vertices), j]).astype(np.int32)
    vals = np.concatenate([deg, -np.ones(len(i))])
    return rows, cols, vals


class _Solve(dr.CustomOp):
    """x = M⁻¹ u for a symmetric M: the adjoint and the tangent are solves too."""

    def eval(self, ls, u):
        self.ls = ls
        return ls._solve(u)

    def forward(self):
        self.set_grad_out(self.ls._solve(self.grad_in("u")))

    def backward(self):
        self.set_grad_in("u", self.ls._solve(self.grad_out()))

    def name(self):
        return "LargeSteps.solve"


class LargeSteps:
    """The map u = (I + λL) x and its inverse for one mesh connectivity.

    Parameters
    ----------
    vertices : array (V, 3) or flat Dr.Jit Float of 3V values
        Only the count is used (positions enter through ``to_differential``).
    faces : array (F, 3) or flat UInt32 of 3F values
        Triangle vertex indices.
    lam : float
        Smoothing strength λ (the paper uses 10-100; larger = smoother steps).
    """

    def __init__(self, vertices, faces, lam: float = 19.0):
        try:
            import cholespy
        except ImportError as e:  # pragma: no cover - depends on the install
            raise ImportError(_INSTALL) from e
        v = np.asarray(vertices, np.float32).reshape(-1, 3)
        f = np.asarray(faces, np.int64).reshape(-1, 3)
        if lam <= 0:
            raise ValueError(f"lam must be positive, got {lam}")
        self.n = len(v)
        self.lam = float(lam)
        rows, cols, vals = laplacian_coo(self.n, f)
        vals = self.lam * vals
        vals[: self.n] += 1.0                                  # I + λL
        self._rows, self._cols, self._vals = rows, cols, vals
        self._solver = cholespy.CholeskySolverF(self.n, rows, cols, vals,
                                                cholespy.MatrixType.COO)

    def _matvec(self, x: np.ndarray) -> np.ndarray:
        out = np.zeros_like(x, dtype=np.float64)
        np.add.at(out, self._rows, self._vals[:, None] * x[self._cols])
        return out

    def _solve(self, u) -> mi.Float:
        b = np.ascontiguousarray(np.asarray(u, np.float32).reshape(self.n, 3))
        x = np.zeros_like(b)
        self._solver.solve(b, x)
        return mi.Float(x.ravel())

    def to_differential(self, x) -> mi.Float:
        """u = (I + λL) x for flat positions x (3V values); not differentiable
        (use it to initialise the optimiser's variable)."""
        x = np.asarray(dr.detach(x) if dr.is_array_v(x) else x, np.float64).reshape(self.n, 3)
        return mi.Float(self._matvec(x).astype(np.float32).ravel())

    def from_differential(self, u) -> mi.Float:
        """x = (I + λL)⁻¹ u, differentiable in u (forward and reverse mode)."""
        if dr.width(u) != 3 * self.n:
            raise ValueError(f"expected {3 * self.n} values (3 per vertex), got {dr.width(u)}")
        return dr.custom(_Solve, self, u)
