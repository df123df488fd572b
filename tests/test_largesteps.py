"""The Laplacian parametrisation: exact round trip, and its solve's adjoint
and tangent are those of the explicit matrix inverse."""
import drjit as dr
import mitsuba as mi
import numpy as np
import pytest

pytest.importorskip("cholespy")
import pathgrad  # noqa: F401,E402
from pathgrad.largesteps import LargeSteps, laplacian_coo  # noqa: E402
from pathgrad.shapes import icosphere_arrays  # noqa: E402


def dense_matrix(n, faces, lam):
    r, c, v = laplacian_coo(n, faces)
    M = np.zeros((n, n))
    np.add.at(M, (r, c), lam * v)
    return M + np.eye(n)


def test_laplacian_rows_sum_to_zero():
    v, f = icosphere_arrays(1)
    M = dense_matrix(len(v), f, 1.0) - np.eye(len(v))
    assert np.allclose(M.sum(1), 0) and np.allclose(M, M.T)
    assert set(np.diag(M)) == {5.0, 6.0}          # icosphere valences 5 and 6


def test_round_trip_and_derivatives():
    v, f = icosphere_arrays(2)
    lam = 7.0
    ls = LargeSteps(v, f, lam=lam)
    x = mi.Float(v.ravel().astype(np.float32))
    u = ls.to_differential(x)
    assert np.abs(np.array(ls.from_differential(u)) - v.ravel()).max() < 1e-5

    Minv = np.linalg.inv(dense_matrix(len(v), f, lam))
    rng = np.random.default_rng(0)
    w = rng.standard_normal((len(v), 3))
    # reverse mode: d<w, x(u)>/du = M⁻¹ w
    uu = mi.Float(u)
    dr.enable_grad(uu)
    dr.backward(dr.sum(ls.from_differential(uu) * mi.Float(w.ravel().astype(np.float32))))
    assert np.allclose(np.array(dr.grad(uu)).reshape(-1, 3), Minv @ w, atol=1e-5)
    # forward mode: dx = M⁻¹ du
    uf = mi.Float(u)
    dr.enable_grad(uf)
    xf = ls.from_differential(uf)
    dr.set_grad(uf, mi.Float(w.ravel().astype(np.float32)))
    dr.forward_to(xf)
    assert np.allclose(np.array(dr.grad(xf)).reshape(-1, 3), Minv @ w, atol=1e-5)


def test_bad_input():
    v, f = icosphere_arrays(0)
    with pytest.raises(ValueError, match="lam"):
        LargeSteps(v, f, lam=0)
    with pytest.raises(ValueError, match="3 per vertex"):
        LargeSteps(v, f).from_differential(mi.Float(np.zeros(5, np.float32)))
