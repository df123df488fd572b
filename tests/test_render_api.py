"""The render front door and the Mitsuba integrator protocol."""
import drjit as dr
import mitsuba as mi
import numpy as np
import pytest

import pathgrad
from conftest import floor_scene, scene_path


def test_integrator_registered_for_xml_and_dicts():
    scene = pathgrad.load_scene(scene_path("cbox.xml"), res=16)
    assert "PathgradIntegrator" in type(scene.integrator()).__name__
    integ = mi.load_dict({"type": "pathgrad", "max_depth": 4})
    assert integ.max_depth == 4
    img = np.array(mi.render(scene, integrator=integ, spp=4))
    assert img.shape == (16, 16, 3) and np.isfinite(img).all() and img.mean() > 0.05


@pytest.mark.parametrize("render", ["pathgrad", "mi"])
def test_forward_and_reverse_are_transposes(render):
    """Dot-product test with identical random numbers: <backward(w), v> equals
    <w, forward(v)> to float rounding, for materials and for geometry (where
    the tangent also flows through vertex normals recomputed from positions:
    ``mi.render`` + ``dr.forward`` used to drop that part, about 25% of the
    gradient; the plugin's render_forward now re-roots the tangents itself)."""
    fn = pathgrad.render if render == "pathgrad" else mi.render
    rng = np.random.default_rng(7)
    for scene, key in [(pathgrad.load_scene(scene_path("cbox.xml"), res=24), "red.reflectance.value"),
                       (floor_scene(res=24), "floor.vertex_positions")]:
        params = pathgrad.parameters(scene, key, enable_grad=False)
        theta0 = type(params[key])(params[key])
        n = dr.width(dr.ravel(theta0))
        v = dr.unravel(type(theta0), mi.Float(rng.normal(size=n).astype(np.float32))) \
            if dr.size_v(theta0) == 3 else mi.Float(rng.normal(size=n).astype(np.float32))
        w = mi.TensorXf(rng.normal(size=(24, 24, 3)).astype(np.float32))

        t = mi.Float(0.0)
        dr.enable_grad(t)
        params[key] = theta0 + t * v
        params.update()
        img = fn(scene, params, spp=1, spp_grad=8, seed=1, seed_grad=3)
        dr.forward(t)
        fwd = float(dr.sum(dr.grad(img) * w, axis=None).array[0])

        leaf = type(theta0)(theta0)
        dr.enable_grad(leaf)
        params[key] = leaf
        params.update()
        img = fn(scene, params, spp=1, spp_grad=8, seed=1, seed_grad=3)
        dr.backward(dr.sum(img * w, axis=None))
        bwd = float(dr.sum(dr.ravel(dr.grad(leaf)) * dr.ravel(v), axis=None)[0])
        params[key] = theta0
        params.update()
        assert abs(fwd) > 1e-3
        assert bwd == pytest.approx(fwd, rel=1e-4), key


def test_same_gradient_through_mi_render_and_pathgrad_render():
    scene = pathgrad.load_scene(scene_path("cbox.xml"), res=16)
    key = "green.reflectance.value"
    out = []
    for via in ("mitsuba", "pathgrad"):
        params = pathgrad.parameters(scene, key)
        if via == "mitsuba":
            img = mi.render(scene, params, spp=4, seed=1, seed_grad=5)
        else:
            img = pathgrad.render(scene, params, spp=4, seed=1, seed_grad=5)
        dr.backward(dr.mean(img, axis=None))
        out.append(np.array(dr.grad(params[key])))
        dr.disable_grad(params[key])
    np.testing.assert_allclose(out[0], out[1], rtol=1e-5)
    assert np.abs(out[0]).max() > 0


def test_render_returns_plain_image_without_params():
    scene = pathgrad.load_scene(scene_path("cbox.xml"), res=16)
    img = pathgrad.render(scene, spp=4)
    assert isinstance(img, mi.TensorXf) and not dr.grad_enabled(img)
    assert tuple(img.shape) == (16, 16, 3)


def test_seed_controls_noise():
    scene = pathgrad.load_scene(scene_path("cbox.xml"), res=16)
    a = np.array(pathgrad.render(scene, spp=4, seed=1))
    b = np.array(pathgrad.render(scene, spp=4, seed=1))
    c = np.array(pathgrad.render(scene, spp=4, seed=2))
    np.testing.assert_array_equal(a, b)
    assert np.abs(a - c).max() > 0


def test_crop_window_and_gaussian_filter_match_full_render():
    """Our camera-ray generation handles crop windows and non-box filters:
    the cropped render equals the same region of the full render in
    expectation, and a Gaussian-filtered image agrees with Mitsuba's path."""
    T = mi.ScalarTransform4f
    def scene(crop, rfilter):
        film = {"type": "hdrfilm", "width": 32, "height": 32, "rfilter": {"type": rfilter},
                "pixel_format": "rgb"}
        if crop:
            film.update(crop_offset_x=8, crop_offset_y=4, crop_width=16, crop_height=20)
        return pathgrad.load_scene({
            "type": "scene", "integrator": {"type": "pathgrad", "max_depth": 3},
            "sensor": {"type": "perspective", "fov": 40, "film": film,
                       "to_world": T().look_at(origin=[0, 0, 4], target=[0, 0, 0], up=[0, 1, 0])},
            "ball": {"type": "sphere", "bsdf": {"type": "diffuse"}},
            "sky": {"type": "constant"}})
    full = np.array(pathgrad.render(scene(False, "box"), spp=256))
    crop = np.array(pathgrad.render(scene(True, "box"), spp=256))
    assert crop.shape == (20, 16, 3)
    np.testing.assert_allclose(crop.mean(), full[4:24, 8:24].mean(), rtol=0.01)
    sc = scene(False, "gaussian")
    ours = np.array(pathgrad.render(sc, spp=256, seed=1))
    ref = np.array(mi.render(sc, integrator=mi.load_dict({"type": "path", "max_depth": 3}),
                             spp=256, seed=2))
    assert np.abs(ours - ref).mean() < 0.01


def test_forward_render_puts_the_callers_parameter_back():
    """After a forward-mode render (tangents re-rooted on fresh leaves) the
    scene holds the caller's own variable again, not the leaf: else a later
    reverse render would give the caller's variables no gradient (measured
    before the fix: params[key] is a live view, and the "restore" kept the
    leaf)."""
    import drjit as dr
    import mitsuba as mi
    from pathgrad.scenes import shadow_scene
    scene = shadow_scene("area", res=8)
    key = "floor.bsdf.reflectance.value"
    params = pathgrad.parameters(scene, key, enable_grad=False)
    base = mi.Color3f(params[key])
    t = mi.Float(0.0)
    dr.enable_grad(t)
    params[key] = base + t * mi.Color3f(1, 0, 0)
    params.update()
    mine = params[key].x.index_ad
    img = pathgrad.render(scene, params, spp=2, seed=1)
    dr.forward(t, dr.ADFlag.ClearNone)
    assert dr.sum(dr.grad(img), axis=None).array[0] > 0
    assert params[key].x.index_ad == mine
    dr.clear_grad(t)
    img = pathgrad.render(scene, params, spp=2, seed=1)
    dr.backward(dr.sum(img, axis=None))
    assert dr.grad(t)[0] > 0
