"""Bad input gets a clear Python exception that says what to do."""
import os
import subprocess
import sys

import drjit as dr
import mitsuba as mi
import numpy as np
import pytest

import pathgrad
from conftest import scene_path


@pytest.fixture
def cbox():
    return pathgrad.load_scene(scene_path("cbox.xml"), res=8)


def test_unknown_key_names_close_matches(cbox):
    with pytest.raises(pathgrad.ParameterError, match=r"red\.reflectance\.value"):
        pathgrad.parameters(cbox, "red.reflectance")


@pytest.mark.parametrize("key", ["floor.bsdf.reflectance.to_uv", "light.emitter.sampling_weight"])
def test_non_differentiable_key(key):
    scene = pathgrad.load_scene(scene_path("materials.xml"), res=8)
    with pytest.raises(pathgrad.ParameterError, match="not differentiable"):
        pathgrad.parameters(scene, key)


def test_missing_scene_file():
    with pytest.raises(FileNotFoundError, match="does not exist"):
        pathgrad.load_scene("no/such/scene.xml")


@pytest.mark.parametrize("spp", [0, -3, 2.5])
def test_bad_spp(cbox, spp):
    with pytest.raises(ValueError, match="positive integer"):
        pathgrad.render(cbox, spp=spp)


@pytest.mark.parametrize("bad", [float("nan"), float("inf")])
def test_non_finite_parameter(cbox, bad):
    params = pathgrad.parameters(cbox, "red.reflectance.value")
    params["red.reflectance.value"] = mi.Color3f(0.5, bad, 0.5)
    dr.enable_grad(params["red.reflectance.value"])
    params.update()
    with pytest.raises(pathgrad.ParameterError, match="NaN or infinite"):
        pathgrad.render(cbox, params, spp=1)


def test_params_must_be_scene_parameters(cbox):
    with pytest.raises(TypeError, match="SceneParameters"):
        pathgrad.render(cbox, {"red.reflectance.value": 1}, spp=1)


def test_scalar_variant_refused():
    with pytest.raises(pathgrad.VariantError, match="scalar"):
        pathgrad.check_variant("scalar_rgb")


def _run(code, **env):
    e = dict(os.environ, **env)
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env=e, timeout=120)


def test_spectral_and_polarized_variants_refused():
    for name in ("llvm_ad_spectral", "llvm_ad_spectral_polarized"):
        with pytest.raises(pathgrad.VariantError, match="RGB and mono"):
            pathgrad.check_variant(name)


def test_all_parameters_of_a_scene():
    # selecting every differentiable key used to fail in update() (KeyError on
    # a transform read while filtering)
    scene = pathgrad.load_scene(scene_path("cbox.xml"), res=8)
    params = pathgrad.parameters(scene)
    assert "red.reflectance.value" in params.keys() and "ball.to_world" not in params.keys()
    img = pathgrad.render(scene, params, spp=1)
    dr.backward(dr.mean(img, axis=None))
    assert dr.all(dr.grad(params["red.reflectance.value"]) != 0)


def test_scalar_variant_in_environment():
    r = _run("import pathgrad", PATHGRAD_VARIANT="scalar_rgb")
    assert r.returncode != 0 and "scalar variant" in r.stderr


def test_render_after_switching_to_scalar_variant():
    r = _run("import pathgrad, mitsuba as mi\n"
             "mi.set_variant('scalar_rgb')\n"
             "pathgrad.render({'type': 'scene'}, spp=1)")
    assert r.returncode != 0 and "VariantError" in r.stderr and "scalar" in r.stderr


@pytest.mark.skipif(not os.path.exists("/usr/lib/x86_64-linux-gnu/libLLVM-15.so.1"),
                    reason="needs Debian's libLLVM 15 to simulate the old library")
def test_old_libllvm_gives_clear_error_not_a_crash():
    r = _run("import pathgrad",
             DRJIT_LIBLLVM_PATH="/usr/lib/x86_64-linux-gnu/libLLVM-15.so.1")
    assert r.returncode == 1, r.stderr  # a Python exception, not an abort
    assert "libLLVM 16 or newer" in r.stderr and "libllvm19" in r.stderr


def test_missing_libllvm_gives_clear_error():
    r = _run("import pathgrad", DRJIT_LIBLLVM_PATH="/nonexistent/libLLVM.so")
    assert r.returncode == 1, r.stderr
    assert "none was found" in r.stderr


def test_bad_integrator_properties(cbox):
    with pytest.raises(Exception, match="max_depth"):
        mi.load_dict({"type": "pathgrad", "max_depth": -5})
    # through the Python API: a plain ValueError that says what is allowed
    for kw, msg in ((dict(max_depth=-5), "max_depth must be -1"),
                    (dict(rr_depth=0), "rr_depth must be > 0"),
                    (dict(boundary_spp=-1), "boundary_spp must be >= 0")):
        with pytest.raises(ValueError, match=msg):
            pathgrad.render(cbox, spp=1, **kw)


def test_sensor_index_out_of_range(cbox):
    with pytest.raises(IndexError, match="sensor"):
        pathgrad.render(cbox, spp=1, sensor=3)


# --------------------------------------------------------------------------
# Both entry points: pathgrad.render and mi.render with the pathgrad plugin
# (through mi.render our exception arrives as the cause of Dr.Jit's
# "error while performing a custom differentiable operation")
# --------------------------------------------------------------------------

def _chain(excinfo) -> str:
    """Every message of an exception and its causes, one per line."""
    e, out = excinfo.value, []
    while e is not None:
        out.append(f"{type(e).__name__}: {e}")
        e = e.__cause__ or e.__context__
    return "\n".join(out)


def _key(params, suffix):
    return next(k for k in params.keys() if k.endswith(suffix))


@pytest.fixture
def small():
    """A tiny scene with a moving mesh (boundary term on) and the plugin as
    its integrator."""
    return pathgrad.scenes.object_scene(
        {"obj": pathgrad.shapes.icosphere(1, 0.8, name="obj", smooth=False,
                                          bsdf=pathgrad.scenes.diffuse(0.5))}, res=8)


@pytest.mark.parametrize("spp", [-3, 2.5])
def test_mi_render_bad_spp_names_spp(small, spp):
    with pytest.raises(Exception) as e:
        mi.render(small, spp=spp)
    assert "spp (samples per pixel) must be" in _chain(e)


def test_bad_seed_names_seed(small):
    with pytest.raises(ValueError, match=r"seed must be in \[0, 2\^32\)"):
        pathgrad.render(small, spp=1, seed=-1)
    # (mi.render hashes its seed itself before the plugin sees it)
    with pytest.raises(ValueError, match="seed must be"):
        small.integrator().render(small, seed=2**33, spp=1)


def test_sampler_with_zero_samples_is_an_error_not_sigfpe():
    # used to kill the process with SIGFPE in _prepare_sampler
    r = _run("import pathgrad, mitsuba as mi\n"
             "s = pathgrad.load_scene({'type': 'scene', 'integrator': {'type': 'pathgrad'},\n"
             "    'sensor': {'type': 'perspective', 'sampler': {'type': 'independent',\n"
             "               'sample_count': 0}, 'film': {'type': 'hdrfilm', 'width': 4,\n"
             "               'height': 4}}, 'sky': {'type': 'constant'}})\n"
             "mi.render(s, spp=0)\n")
    assert r.returncode == 1, r.stderr[-2000:]
    assert "sample_count=0" in r.stderr and "spp" in r.stderr


@pytest.mark.parametrize("bad", [float("nan"), float("inf")])
@pytest.mark.parametrize("mode", ["backward", "forward"])
def test_non_finite_vertex_both_entry_points(small, bad, mode):
    params = mi.traverse(small)
    key = "obj.vertex_positions"
    v = dr.detach(params[key])
    v[4] = bad
    dr.enable_grad(v)
    params[key] = v
    params.update()
    for entry in ("pathgrad", "mi"):
        with pytest.raises(Exception) as e:
            if mode == "backward":
                img = (pathgrad.render(small, params, spp=1) if entry == "pathgrad"
                       else mi.render(small, params, spp=1))
                dr.backward(dr.mean(img, axis=None))
            else:
                dr.set_grad(params[key], 1.0)
                small.integrator().render_forward(small, params, 0, 0, 1)
        assert key in _chain(e) and "NaN or infinite" in _chain(e), (entry, _chain(e))


@pytest.mark.parametrize("suffix", ["red.reflectance.value", "light.emitter.radiance.value",
                                    ".vertex_positions"])
def test_non_finite_value_in_primal_render_is_named(suffix):
    # the primal has no parameter list: the image check finds it, then a
    # traversal names the culprit (NaN radiance spread through the image; a
    # NaN vertex was silently absorbed)
    scene = pathgrad.load_scene(scene_path("cbox.xml"), res=8)
    params = mi.traverse(scene)
    key = _key(params, suffix)
    v = type(params[key])(params[key])
    if suffix == ".vertex_positions":
        v[0] = float("nan")
    else:
        v = type(v)(0.5, float("nan"), 0.5)
    params[key] = v
    params.update()
    for render in (lambda: pathgrad.render(scene, spp=1), lambda: mi.render(scene, spp=1)):
        with pytest.raises(Exception) as e:
            render()
        assert key in _chain(e) and "NaN or infinite" in _chain(e)


def test_non_differentiable_key_with_gradients(cbox):
    # (the pose and fov are differentiated: tests/test_camera_gradients.py)
    params = mi.traverse(cbox)
    key = _key(params, ".principal_point_offset_x")
    dr.enable_grad(params[key])
    params.update()
    with pytest.raises(pathgrad.ParameterError, match="non-differentiable") as e:
        pathgrad.render(cbox, params, spp=1)
    assert key in str(e.value)
    img = mi.render(cbox, params, spp=1)
    with pytest.raises(Exception) as e:
        dr.backward(dr.mean(img, axis=None))
    assert key in _chain(e) and "non-differentiable" in _chain(e)


def test_gradients_on_faces_only_warn_that_nothing_is_attached(cbox):
    params = mi.traverse(cbox)
    key = _key(params, ".faces")
    params.keep([f"^{key}$"])
    dr.enable_grad(params[key])   # Dr.Jit ignores this on integers
    # a warning (a plain image is still useful, e.g. under torch.no_grad())
    with pytest.warns(pathgrad.api.NothingAttachedWarning, match="none with gradients") as w:
        img = pathgrad.render(cbox, params, spp=1)
    assert key in str(w[0].message) and not dr.grad_enabled(img)


def test_write_without_update_is_refused(small):
    params = mi.traverse(small)
    key = "obj.vertex_positions"
    v = dr.detach(params[key]) * 1.1
    dr.enable_grad(v)
    params[key] = v            # no params.update(): the BVH and normals are stale
    with pytest.raises(pathgrad.ParameterError, match=r"params.update\(\)") as e:
        pathgrad.render(small, params, spp=1)
    assert "['obj.vertex_positions']" in str(e.value)
    params.update()
    pathgrad.render(small, params, spp=1)


def test_checks_allow_frozen_steps(cbox):
    # dr.freeze records the step once and replays it: the checks must not read
    # from the device while recording, and a replay equals an unfrozen step
    key = "red.reflectance.value"
    params = pathgrad.parameters(cbox, key)
    integ = pathgrad.make_integrator(boundary=False)

    def step(seed):
        img = mi.render(cbox, params, integrator=integ, spp=2, seed=seed)
        dr.backward(dr.mean(img, axis=None))
        g = dr.grad(params[key])
        dr.eval(g)
        return g

    frozen = dr.freeze(step)
    for seed in (1, 2, 3):
        dr.set_grad(params[key], 0.0)
        g_frozen = np.array(frozen(mi.UInt32(seed)))
        dr.set_grad(params[key], 0.0)
        g_plain = np.array(step(mi.UInt32(seed)))
        assert np.abs(g_plain).max() > 0
        np.testing.assert_allclose(g_frozen, g_plain, rtol=1e-5)


def test_non_finite_gradient_is_an_error_not_a_silent_nan():
    # a 42-vertex sphere of radius 5e-7 over a floor: its faces' edge cross
    # products (~7e-14) are past float32's range for Mitsuba's face-normal
    # derivative, so reverse-mode vertex gradients overflow (66 of 126 entries
    # measured; forward mode stays finite there: the cube of 1/|v| appears in
    # the adjoint only)
    s, T = 1e-6, mi.ScalarTransform4f
    scene = pathgrad.load_scene({
        "type": "scene", "integrator": {"type": "pathgrad", "max_depth": 2},
        "sensor": {"type": "perspective", "fov": 40, "near_clip": 1e-2 * s,
                   "to_world": T().look_at(origin=[0, 1.6 * s, 3 * s], target=[0, 0.5 * s, 0],
                                           up=[0, 1, 0]),
                   "film": {"type": "hdrfilm", "width": 8, "height": 8}},
        "floor": pathgrad.shapes.grid(4, 6 * s, name="floor", smooth=False),
        "obj": pathgrad.shapes.icosphere(1, 0.5 * s, center=(0.2 * s, 0.6 * s, 0), name="obj"),
        "lamp": {"type": "point", "position": [1.2 * s, 2.2 * s, 0.8 * s],
                 "intensity": {"type": "rgb", "value": 6 * s * s}}})
    key = "obj.vertex_positions"
    params = pathgrad.parameters(scene, key)
    integ = pathgrad.make_integrator(boundary=False)
    for render in (pathgrad.render, mi.render):
        with pytest.raises(Exception) as e:
            img = render(scene, params, spp=2, integrator=integ)
            dr.backward(dr.mean(img, axis=None))
        text = _chain(e)
        assert "NaN or infinite" in text and "larger units" in text and key in text, text


def test_forward_mode_with_another_attached_scene_alive_says_what_to_do(small):
    # Dr.Jit's symbolic calls visit every live shape: the AD edges of another
    # scene's attached vertex positions (to its normals) then lie in the
    # forward pass's graph, outside its isolated scope (Mitsuba's prb fails
    # the same way). The message says so and what to do.
    other = pathgrad.scenes.object_scene(
        {"obj": pathgrad.shapes.icosphere(1, 0.5, name="obj", bsdf=pathgrad.scenes.diffuse(0.3))},
        res=8)
    other_params = pathgrad.parameters(other, "obj.vertex_positions")
    params = pathgrad.parameters(small, "obj.vertex_positions")
    t = {"obj.vertex_positions": mi.Float(params["obj.vertex_positions"]) * 0 + 1}
    with pytest.raises(RuntimeError, match="another scene loaded in this process"):
        pathgrad.gradient_images(small, params, t, spp=1)
    # freeing it (or detaching its parameters) is enough
    other_params["obj.vertex_positions"] = dr.detach(other_params["obj.vertex_positions"])
    other_params.update()
    g = pathgrad.gradient_images(small, params, t, spp=1)
    assert np.isfinite(np.array(g["total"])).all() and np.abs(np.array(g["total"])).max() > 0


def test_non_finite_value_outside_params_is_named_after_the_gradient_pass(cbox):
    # pathgrad.render reads its primal image check together with the gradient
    # pass (a read right after the primal would stall the tracing of that pass)
    params = mi.traverse(cbox)
    light = "light.emitter.radiance.value"
    params[light] = mi.Color3f(float("nan"), 1, 1)
    params.update()
    grads = pathgrad.parameters(cbox, "red.reflectance.value")
    for mode in ("backward", "forward"):
        img = pathgrad.render(cbox, grads, spp=1)
        with pytest.raises(Exception) as e:
            if mode == "backward":
                dr.backward(dr.mean(img, axis=None))
            else:
                dr.forward(grads["red.reflectance.value"])
        assert light in _chain(e) and "NaN or infinite" in _chain(e), mode
