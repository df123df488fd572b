"""Renders in passes (pathgrad.passes): a render beyond the memory budget or
the lane limit is split into passes with their own seeds and accumulated,
in primal, forward and reverse mode; the result is the spp-weighted sum of
the passes (deterministic for a seed) and matches a one-pass render within
noise."""
import drjit as dr
import mitsuba as mi
import numpy as np
import pytest

import pathgrad
from pathgrad import passes
from pathgrad.scenes import diffuse, object_scene
from pathgrad.integrator import BOUNDARY_BYTES_PER_LANE, CAMERA_BYTES_PER_LANE
from pathgrad.shapes import icosphere

RES = 8
KEY = "obj.vertex_positions"
# 8x8 film: 64 lanes per sample per pixel at 1 byte each (the integrator's
# per-lane model), so this budget holds 4 samples per pixel per pass
SMALL_BUDGET_MB = 4 * 64 / 2**20


@pytest.fixture(scope="module")
def scene():
    return object_scene({"obj": icosphere(1, 0.8, name="obj", smooth=False, bsdf=diffuse(0.6))},
                        res=RES, lights={"lamp": {"type": "point", "position": [2, 2, 3],
                                                  "intensity": {"type": "rgb", "value": 20}}})


def _integrator(budget_mb=0.0):
    return pathgrad.make_integrator(max_depth=2, memory_budget_mb=budget_mb, progress=False)


# Gradient passes also hold each boundary estimator's samples (evaluated
# between phases, BOUNDARY_BYTES_PER_LANE each; the estimators run one after
# the other, so the largest wavefront sets the pass size). With boundary_spp
# equal to the spp, an estimator has as many lanes per sample per pixel as
# the camera: this budget holds 4 samples per pixel per pass
GRAD_SPP = 8
GRAD_BUDGET_MB = 4 * 64 * max(CAMERA_BYTES_PER_LANE["backward"], BOUNDARY_BYTES_PER_LANE) / 2**20


def _grad_integrator(budget_mb=0.0, boundary_spp=GRAD_SPP):
    """The gradient passes' integrator: boundary_spp fixed (a pass of a
    fraction f of the render takes f of it), so that a one-pass render of a
    part with boundary_spp = its spp is that pass."""
    return pathgrad.make_integrator(max_depth=2, memory_budget_mb=budget_mb, progress=False,
                                    boundary_spp=float(boundary_spp))


def test_plan_of_a_huge_render_fits_the_lane_limit():
    # 65000 spp at 256x256 (just under 2^32 samples) used to grind for hours
    # in one wavefront; now it is split into passes of at most LANES_PER_PASS
    s = mi.load_dict({"type": "perspective", "film": {"type": "hdrfilm", "width": 256,
                                                        "height": 256}})
    for mode in ("primal", "forward", "backward"):
        plan = _integrator().pass_plan(s, 65000, 5, mode)
        counts = [n for n, _ in plan]
        assert sum(counts) == 65000 and max(counts) * 256 * 256 <= passes.LANES_PER_PASS
        assert plan[0][1] == 5 and len({seed for _, seed in plan}) == len(plan)


def test_budget_too_small_for_one_sample_is_refused_with_the_number(scene):
    with pytest.raises(ValueError, match=r"needs 64 lanes.*memory_budget_mb"):
        pathgrad.render(scene, spp=4, integrator=_integrator(32 / 2**20))


def test_primal_in_passes_is_the_weighted_sum_and_within_noise(scene, capsys):
    chunked = np.array(pathgrad.render(scene, spp=12, seed=3,
                                       integrator=_integrator(SMALL_BUDGET_MB)))
    plan = _integrator(SMALL_BUDGET_MB).pass_plan(scene.sensors()[0], 12, 3)
    assert [n for n, _ in plan] == [4, 4, 4]
    parts = sum(n / 12 * np.array(pathgrad.render(scene, spp=n, seed=s, integrator=_integrator()))
                for n, s in plan)
    np.testing.assert_allclose(chunked, parts, rtol=1e-5, atol=1e-7)
    again = np.array(pathgrad.render(scene, spp=12, seed=3, integrator=_integrator(SMALL_BUDGET_MB)))
    np.testing.assert_array_equal(chunked, again)           # deterministic
    one = np.array(pathgrad.render(scene, spp=12, seed=3, integrator=_integrator()))
    ref = np.array(pathgrad.render(scene, spp=384, seed=99, integrator=_integrator()))
    e_chunked, e_one = (np.sqrt(np.mean((x - ref) ** 2)) for x in (chunked, one))
    print(f"rms error vs 384 spp: chunked {e_chunked:.4g}, one pass {e_one:.4g}")
    assert 0 < e_chunked < 1.5 * e_one and not np.array_equal(chunked, one)


def test_progress_bar_over_passes(scene, capsys):
    integ = pathgrad.make_integrator(max_depth=2, memory_budget_mb=SMALL_BUDGET_MB)
    pathgrad.render(scene, spp=8, integrator=integ)
    assert "pathgrad primal" in capsys.readouterr().err


def _vertex_gradient(scene, integ, spp, seed_grad):
    params = pathgrad.parameters(scene, KEY)
    img = pathgrad.render(scene, params, spp=1, spp_grad=spp, seed_grad=seed_grad,
                          integrator=integ)
    dr.backward(dr.mean(img, axis=None))
    g = np.array(dr.grad(params[KEY]))
    params[KEY] = dr.detach(params[KEY])
    params.update()
    return g


def test_backward_in_passes_is_the_weighted_sum_of_passes(scene):
    chunked = _vertex_gradient(scene, _grad_integrator(GRAD_BUDGET_MB), GRAD_SPP, 11)
    plan = _grad_integrator(GRAD_BUDGET_MB).pass_plan(scene.sensors()[0], GRAD_SPP, 11, "backward")
    assert len(plan) == 2
    parts = sum(n / GRAD_SPP * _vertex_gradient(scene, _grad_integrator(boundary_spp=n), n, s)
                for n, s in plan)
    assert np.abs(chunked).max() > 0
    np.testing.assert_allclose(chunked, parts, rtol=1e-4, atol=1e-4 * np.abs(parts).max())
    # within noise of one pass: compare with the spread of one-pass gradients
    ones = np.array([_vertex_gradient(scene, _grad_integrator(), GRAD_SPP, s) for s in (11, 12, 13)])
    spread = ones.std(axis=0).mean()
    assert np.abs(chunked - ones.mean(axis=0)).mean() < 3 * spread


def test_forward_in_passes_is_the_weighted_sum_of_passes(scene):
    params = pathgrad.parameters(scene, KEY)
    t = {KEY: dr.full(mi.Float, 1.0, dr.width(params[KEY]))}

    def grad_image(integ, spp, seed):
        g = pathgrad.gradient_images(scene, params, t, spp=spp, seed=seed, integrator=integ)
        return {k: np.array(v) for k, v in g.items()}

    chunked = grad_image(_grad_integrator(GRAD_BUDGET_MB), GRAD_SPP, 21)
    plan = _grad_integrator(GRAD_BUDGET_MB).pass_plan(scene.sensors()[0], GRAD_SPP, 21, "forward")
    assert len(plan) == 2
    parts = [grad_image(_grad_integrator(boundary_spp=n), n, s) for n, s in plan]
    for term in ("interior", "boundary", "total"):
        expected = sum(n / GRAD_SPP * p[term] for (n, _), p in zip(plan, parts))
        assert np.abs(expected).max() > 0, term
        np.testing.assert_allclose(chunked[term], expected, rtol=1e-4,
                                   atol=1e-5 * np.abs(expected).max(), err_msg=term)
