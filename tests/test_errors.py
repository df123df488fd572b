"""Bad input gets a clear Python exception that says what to do."""
import os
import subprocess
import sys

import drjit as dr
import mitsuba as mi
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
