"""Gradients of material, texture, light and (shading-only) geometry
parameters against central finite differences with common random numbers.

Every case runs :func:`pathgrad.gradcheck`, which compares the forward-mode
gradient image pixel by pixel and the reverse-mode derivative of a linear
functional with the FD reference, under ``rel_error² <= (2·noise)² + tol²``
where ``noise`` is measured from the spread over seeds. Each case also asserts
that the check has power: the measured noise is small, and the same check
fails for a zero gradient and for a gradient of the wrong sign
(``report.with_ad_scaled(0)``, ``report.with_ad_scaled(-1)``).
"""
import numpy as np
import pytest

import pathgrad
from conftest import floor_scene, scene_path

TOL = 0.05   # systematic error allowed on top of 2x the measured noise

# (id, scene file, xml args, key, direction, eps, spp, spp_fd)
CASES = [
    ("albedo-direct", "cbox.xml", dict(max_depth=2), "red.reflectance.value", None, 0.02, 32, 128),
    ("albedo-gi", "cbox.xml", dict(max_depth=6), "red.reflectance.value", None, 0.02, 32, 128),
    ("albedo-gi-green", "cbox.xml", dict(max_depth=6), "green.reflectance.value", [0, 1, 0], 0.02, 32, 128),
    ("roughness-conductor", "materials.xml", {}, "metal.bsdf.alpha.value", None, 0.03, 64, 1024),
    ("texels", "materials.xml", {}, "floor.bsdf.reflectance.data", None, 0.02, 32, 128),
    ("area-light", "materials.xml", {}, "light.emitter.radiance.value", None, 0.1, 32, 128),
    ("area-light-cbox", "cbox.xml", {}, "light.emitter.radiance.value", [1, 0, 0], 0.2, 32, 128),
    ("point-light", "materials.xml", {}, "spot.intensity.value", None, 0.1, 32, 128),
    ("constant-env", "materials.xml", {}, "sky.radiance.value", None, 0.02, 32, 128),
    ("envmap", "envmap.xml", {}, "sky.data", None, 0.05, 32, 128),
]


def assert_check_has_power(report):
    """The comparison could fail: noise is well below the gradient, and a zero
    or sign-flipped gradient is rejected by the same criterion."""
    assert report.noise < 0.35, f"FD/AD noise too high for a meaningful check:\n{report}"
    assert not report.with_ad_scaled(0.0).passed, "a zero gradient would pass"
    assert not report.with_ad_scaled(-1.0).passed, "a wrong-sign gradient would pass"
    assert not report.with_ad_scaled(0.0).reverse_ok
    assert not report.with_ad_scaled(0.0).forward_ok


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_gradient_matches_finite_differences(case):
    _, fname, xml_args, key, direction, eps, spp, spp_fd = case
    scene = pathgrad.load_scene(scene_path(fname), res=32, **xml_args)
    report = pathgrad.gradcheck(scene, key, direction, eps=eps, spp=spp,
                                spp_fd=spp_fd, seeds=4, tol=TOL)
    print(report)
    assert report.passed, str(report)
    assert report.adjoint_mismatch < 1e-3, "forward and reverse mode disagree"
    assert_check_has_power(report)


@pytest.mark.parametrize("mode", ["translate", "displace"])
def test_moving_geometry_interior(mode):
    """A smooth-shaded floor filling the view moves (rigidly along its normal,
    or by a random per-vertex displacement): shading, distances to the lights
    and the area Jacobians of reflected light change, visibility does not."""
    scene = floor_scene()
    if mode == "translate":
        direction, eps = [0, 1, 0], 0.01
    else:
        import mitsuba as mi
        n = len(np.array(mi.traverse(scene)["floor.vertex_positions"])) // 3
        d = np.zeros((n, 3))
        d[:, 1] = np.random.default_rng(1).normal(size=n)
        direction, eps = d.ravel(), 0.005
    report = pathgrad.gradcheck(scene, "floor.vertex_positions", direction, eps=eps,
                                spp=32, spp_fd=128, seeds=3, tol=TOL)
    print(report)
    assert report.passed, str(report)
    assert_check_has_power(report)


def test_roughplastic_alpha_is_a_mitsuba_bsdf_limit():
    """Known limit, not ours: Mitsuba's ``roughplastic`` precomputes the rough
    transmittance that scales its diffuse lobe from ``alpha`` without AD, so
    any AD integrator misses that part of d/d(alpha). We check that pathgrad
    equals Mitsuba's ``prb`` to rounding (same random numbers) while both
    miss the FD value by far; if a Mitsuba upgrade fixes the BSDF this test
    fails and the case belongs in CASES above."""
    import drjit as dr
    import mitsuba as mi
    scene = pathgrad.load_scene(scene_path("envmap.xml"), res=24)
    params = mi.traverse(scene)
    params.keep(["floor.bsdf.alpha"])
    a0 = float(params["floor.bsdf.alpha"][0])
    grads = []
    for integrator in (mi.load_dict({"type": "prb", "max_depth": 3}),
                       pathgrad.make_integrator(max_depth=3)):
        leaf = mi.Float(a0)
        dr.enable_grad(leaf)
        params["floor.bsdf.alpha"] = leaf
        params.update()
        img = mi.render(scene, params, integrator=integrator, spp=64, seed=1, seed_grad=2)
        dr.backward(dr.sum(img, axis=None))
        grads.append(float(dr.grad(leaf)[0]))
    report = pathgrad.gradcheck(scene, "floor.bsdf.alpha", eps=0.03, spp=64, spp_fd=512,
                                seeds=2, check_step=False)
    params["floor.bsdf.alpha"] = mi.Float(a0)
    params.update()
    assert grads[1] == pytest.approx(grads[0], rel=1e-4)
    assert report.reverse_rel_error > 0.3, str(report)
