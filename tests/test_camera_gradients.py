"""Camera gradients against finite differences: the pose (translation and
rotation of ``to_world``) of perspective and orthographic sensors and the
perspective field of view, on a scene with silhouettes (an icosphere, a
box), creases (the flat-shaded box), a shading terminator (the smooth
icosphere) and cast shadows (a mesh area light); two-sensor scenes.

Each case passes with every term, fails without the boundary term (same
finite differences), and, as every gradient test, would fail for a zero or a
sign-flipped gradient (``check_term``). Finite-difference steps move the
image by about 0.05-0.1 pixel (0.01 scene units or 0.1 degree at 20 px).
"""
import drjit as dr
import mitsuba as mi
import numpy as np
import pytest

import pathgrad
from pathgrad import poses, shapes
from pathgrad.scenes import camera_scene, diffuse, object_scene
from conftest import check_term

CASES = {
    "perspective translation": ("perspective", "sensor.to_world", {"translate": [1, 0, 0]}, 0.01),
    "perspective rotation": ("perspective", "sensor.to_world", {"rotate": [0, 1, 0]}, 0.1),
    "perspective fov": ("perspective", "sensor.x_fov", 1.0, 0.05),
    "orthographic translation": ("orthographic", "sensor.to_world", {"translate": [0, 1, 0.5]},
                                 0.01),
    "orthographic rotation": ("orthographic", "sensor.to_world", {"rotate": [1, 0, 0]}, 0.1),
}
SLOW = {"perspective rotation", "orthographic rotation", "perspective fov"}


@pytest.mark.parametrize("case", [pytest.param(c, marks=pytest.mark.slow) if c in SLOW else c
                                  for c in CASES])
def test_camera_gradient(case):
    sensor, key, direction, eps = CASES[case]
    check_term(camera_scene(sensor, res=20), key, direction, eps, {"boundary": False},
               spp=128, spp_fd=1024)


@pytest.mark.slow
def test_camera_translation_needs_the_shadow_terms():
    """A moving camera moves every shadow edge in the image: the shadow
    estimators must follow the shading points along the camera rays."""
    scene = camera_scene("perspective", res=20)
    check_term(scene, "sensor.to_world", {"translate": [1, 0, 0]}, 0.01, {"shadow": False},
               spp=128, spp_fd=1024)


def _two_sensor_scene(res=16):
    T = mi.ScalarTransform4f
    side = {"type": "perspective", "fov": 40,
            "to_world": T().look_at(origin=[3.2, 0.8, 2.0], target=[0, 0, 0], up=[0, 1, 0]),
            "film": {"type": "hdrfilm", "width": res, "height": res, "rfilter": {"type": "box"},
                     "pixel_format": "rgb"},
            "sampler": {"type": "independent"}}
    ball = shapes.icosphere(1, 0.7, name="ball", center=(0.2, 0.1, 0), smooth=False,
                            bsdf=diffuse(0.7, 0.3, 0.2))
    return object_scene({"ball": ball, "side": side}, res=res)


@pytest.mark.slow
def test_second_sensor_gradient():
    """Geometry gradients seen through the scene's second sensor."""
    check_term(_two_sensor_scene(), "ball.vertex_positions", [1, 0, 0.5], 0.005,
               {"boundary": False}, spp=64, spp_fd=1024, sensor=1)


def test_two_views_one_backward():
    """One backward over the sum of two views: each sensor's pose gets the
    gradient of its own view (exactly what a backward over that view alone
    gives), and the mesh the sum of both views' gradients, which matches
    central differences of the summed objective."""
    scene = _two_sensor_scene()
    keys = ["sensor.to_world", "side.to_world", "ball.vertex_positions"]
    params = pathgrad.parameters(scene, keys, enable_grad=False)
    base = {k: poses.detached(params[k]) for k in keys[:2]}
    v0 = dr.detach(params[keys[2]])
    move = {"translate": [0.3, 1, 0]}
    shift = mi.Float(np.tile([1, 0, 0.5], dr.width(v0) // 3).astype(np.float32))
    rng = np.random.default_rng(3)
    w = [mi.TensorXf(rng.random((16, 16, 3)).astype(np.float32)) for _ in range(2)]

    def objective(s, views, seed, spp=64, ad=True):
        params[keys[0]] = poses.moved(base[keys[0]], s[0], move)
        params[keys[1]] = poses.moved(base[keys[1]], s[1], move)
        params[keys[2]] = v0 + s[2] * shift
        params.update()
        return sum(dr.sum(pathgrad.render(scene, params if ad else None, sensor=i, spp=spp,
                                          seed=seed) * w[i], axis=None).array for i in views)

    def gradient(views, seed):
        s = [mi.Float(0.0) for _ in range(3)]
        dr.enable_grad(*s)
        dr.backward(objective(s, views, seed))
        return np.array([dr.grad(x)[0] for x in s])

    both = [gradient((0, 1), seed) for seed in range(4)]
    alone = [gradient((0,), 0), gradient((1,), 0)]
    np.testing.assert_allclose(both[0][0], alone[0][0], rtol=1e-4)   # sensor 0: view 0 only
    np.testing.assert_allclose(both[0][1], alone[1][1], rtol=1e-4)   # sensor 1: view 1 only
    np.testing.assert_allclose(both[0][2], alone[0][2] + alone[1][2], rtol=1e-3)
    assert alone[0][1] == 0 and alone[1][0] == 0

    eps = 0.005
    fd = []
    for seed in range(4):
        hi = objective([0.0, 0.0, eps], (0, 1), 100 + seed, spp=512, ad=False)
        lo = objective([0.0, 0.0, -eps], (0, 1), 100 + seed, spp=512, ad=False)
        fd.append(float((hi - lo)[0]) / (2 * eps))
    ad = np.array([g[2] for g in both])
    fd = np.array(fd)
    err = abs(ad.mean() - fd.mean())
    noise = np.hypot(ad.std(ddof=1), fd.std(ddof=1)) / 2          # std error of the means
    assert abs(fd.mean()) > 10 * noise, "finite differences too noisy to be meaningful"
    assert err <= 3 * noise + 0.05 * abs(fd.mean()), (ad, fd)


@pytest.mark.parametrize("key, direction", [("sensor.to_world", {"translate": [1, 0, 0]}),
                                            ("sensor.x_fov", 1.0)])
def test_mi_render_with_the_plugin_differentiates_the_camera(key, direction):
    """mi.render(...) with the pathgrad integrator gives the camera gradient
    of pathgrad.render (same seeds), in reverse and forward mode (which
    test_camera_gradient checks against finite differences)."""
    scene = camera_scene("perspective", res=12)
    params = pathgrad.parameters(scene, key, enable_grad=False)
    pose = key.endswith("to_world")
    base = poses.detached(params[key]) if pose else mi.Float(dr.detach(params[key]))
    out = {}
    for mode in ("reverse", "forward"):
        for name, fn in (("pathgrad", pathgrad.render), ("mi", mi.render)):
            s = mi.Float(0.0)
            dr.enable_grad(s)
            params[key] = poses.moved(base, s, direction) if pose else base + s * direction
            params.update()
            img = fn(scene, params, spp=16, seed=1, seed_grad=7)
            if mode == "reverse":
                dr.backward(dr.sum(img, axis=None))
                out[mode, name] = float(dr.grad(s)[0])
            else:
                dr.forward(s)
                out[mode, name] = float(dr.sum(dr.grad(img), axis=None).array[0])
    assert out["reverse", "pathgrad"] != 0
    for mode in ("reverse", "forward"):
        assert out[mode, "mi"] == pytest.approx(out[mode, "pathgrad"], rel=1e-4), out
    assert out["forward", "mi"] == pytest.approx(out["reverse", "mi"], rel=1e-4), out
