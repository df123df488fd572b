"""Primary-visibility boundary term (silhouette edge sampling) against
finite differences.

Each case checks the full gradient (interior + boundary) with
:func:`pathgrad.gradcheck`, then the same gradient with the boundary term
switched off against the *same* finite differences, which must fail; and as
in every gradient test, a zero and a sign-flipped gradient must fail too.

Meshes are mostly flat-shaded here; smooth-shaded meshes, whose shading
terminator is a discontinuity of its own, are tested in test_terminator.py.
"""
import drjit as dr
import pytest
import numpy as np
import mitsuba as mi

import pathgrad
from pathgrad.shapes import icosphere, icosphere_arrays, mesh_from_arrays
from conftest import check_term, diffuse, object_scene, scene_path



def check(scene, key, direction, eps, *, boundary_matters=True, **kw):
    return check_term(scene, key, direction, eps, {"boundary": False} if boundary_matters else {},
                      **kw)


def vertex_count(scene, key):
    return len(np.array(mi.traverse(scene)[key])) // 3


def test_sphere_translated():
    scene = object_scene({"ball": icosphere(3, 0.8, name="ball", smooth=False, bsdf=diffuse(0.2))})
    check(scene, "ball.vertex_positions", [1, 0.4, 0], eps=0.005)


def test_sphere_scaled():
    v, _ = icosphere_arrays(3)
    scene = object_scene({"ball": icosphere(3, 0.8, name="ball", smooth=False, bsdf=diffuse(0.2))})
    check(scene, "ball.vertex_positions", v.ravel(), eps=0.005)


def test_smooth_fine_sphere_translated():
    """Smooth shading on a fine mesh (10242 vertices): the terminator band is
    far below a pixel, so the silhouette term alone is accurate."""
    scene = object_scene({"ball": icosphere(5, 0.8, name="ball", smooth=True, bsdf=diffuse(0.2))})
    check(scene, "ball.vertex_positions", [1, 0, 0], eps=0.005)


def test_emitting_rectangle_over_black():
    quad = mesh_from_arrays("quad", np.array([[-0.6, -0.4, 0], [0.6, -0.4, 0], [0.6, 0.4, 0],
                                              [-0.6, 0.4, 0]]), np.array([[0, 1, 2], [0, 2, 3]]),
                            smooth=False, emitter={"type": "area", "radiance": {"type": "rgb", "value": [4, 3, 2]}})
    scene = object_scene({"quad": quad}, env=None, max_depth=1)
    check(scene, "quad.vertex_positions", [1, -0.5, 0], eps=0.005)


def test_emitting_sphere_over_black():
    ball = icosphere(3, 0.7, name="ball", smooth=False,
                     emitter={"type": "area", "radiance": {"type": "rgb", "value": [1, 2, 3]}})
    scene = object_scene({"ball": ball}, env=None, max_depth=1)
    check(scene, "ball.vertex_positions", [-0.5, 1, 0], eps=0.005)


def test_random_displacement_of_visible_sphere():
    scene = object_scene({"ball": icosphere(2, 0.8, name="ball", smooth=False, bsdf=diffuse(0.5))},
                         lights={"sun": {"type": "directional", "direction": [-1, -1, -1],
                                         "irradiance": {"type": "rgb", "value": 2}}}, env=0.3)
    n = vertex_count(scene, "ball.vertex_positions")
    d = np.random.default_rng(3).normal(size=(n, 3))
    check(scene, "ball.vertex_positions", d.ravel(), eps=0.003)


def test_textured_plane_translated():
    """Translating a textured plane in its own plane: the texture slides
    under the pixels (interior term) and the plane's borders move (boundary)."""
    verts = np.array([[-0.8, -0.6, 0], [0.8, -0.6, 0], [0.8, 0.6, 0], [-0.8, 0.6, 0]])
    uv = np.array([[0, 0], [1, 0], [1, 1], [0, 1]])
    plane = mesh_from_arrays("plane", verts, np.array([[0, 1, 2], [0, 2, 3]]), smooth=False, uv=uv,
                             bsdf={"type": "diffuse", "reflectance": {
                                 "type": "bitmap", "filename": scene_path("textures/checker.exr"),
                                 "filter_type": "bilinear"}})
    scene = object_scene({"plane": plane}, env=1.0)
    check(scene, "plane.vertex_positions", [1, 0.3, 0], eps=0.005)
    # both terms carry a good part of the gradient here
    params = pathgrad.parameters(scene, "plane.vertex_positions")
    t = mi.Float(np.tile([1.0, 0.3, 0], 4).astype(np.float32))
    terms = pathgrad.gradient_images(scene, params, {"plane.vertex_positions": t}, spp=32)
    i, b = (np.linalg.norm(np.array(terms[k])) for k in ("interior", "boundary"))
    assert i > 0.2 * b and b > 0.2 * i, (i, b)


def test_split_vertex_cube_translated():
    """Mitsuba's built-in cube has 24 vertices split at its corners; without
    welding, every edge would look open and the silhouette test would pick
    the wrong edges (here: every edge of every visible face)."""
    T = mi.ScalarTransform4f
    cube = {"type": "cube", "to_world": T().rotate([1, 1, 0], 35).scale(0.6), "bsdf": diffuse(0.3)}
    scene = object_scene({"cube": cube},
                         lights={"sun": {"type": "directional", "direction": [-0.3, -1, -0.6],
                                         "irradiance": {"type": "rgb", "value": 3}}}, env=0.5)
    key = [k for k in mi.traverse(scene).keys() if k.endswith("vertex_positions")][0]
    assert vertex_count(scene, key) == 24
    check(scene, key, [1, 0.5, 0], eps=0.005)


@pytest.mark.slow   # (the Gaussian filter is also checked without sample_border, in the default suite)
def test_partly_outside_frame_sample_border_gaussian():
    """A sphere cut by the image border, Gaussian filter, sample_border on:
    the edges outside the film still splat into border pixels."""
    ball = icosphere(3, 0.8, name="ball", smooth=False, bsdf=diffuse(0.2), center=(1.2, 0.3, 0))
    scene = object_scene({"ball": ball}, rfilter="gaussian", sample_border=True)
    check(scene, "ball.vertex_positions", [1, 0.2, 0], eps=0.005)


def test_gaussian_filter_without_sample_border():
    ball = icosphere(3, 0.8, name="ball", smooth=False, bsdf=diffuse(0.2), center=(1.2, 0, 0))
    scene = object_scene({"ball": ball}, rfilter="gaussian", sample_border=False)
    check(scene, "ball.vertex_positions", [1, 0, 0], eps=0.005)


def test_occluded_silhouette():
    """A sphere partly hidden behind a fixed box: silhouette points behind the
    box must not contribute (the box's own outline does not move)."""
    T = mi.ScalarTransform4f
    ball = icosphere(3, 0.8, name="ball", smooth=False, bsdf=diffuse(0.2))
    box = {"type": "cube", "to_world": T().translate([0.9, 0, 1.2]).scale([0.5, 1.5, 0.1]),
           "bsdf": diffuse(0.8, 0.5, 0.2)}
    scene = object_scene({"ball": ball, "box": box})
    check(scene, "ball.vertex_positions", [1, 0, 0], eps=0.005)


def test_no_differentiable_geometry_costs_nothing():
    """Only a material is differentiated: the boundary estimator returns early
    and the gradient equals the interior-only one (to the rounding of
    multi-threaded atomic accumulation)."""
    scene = pathgrad.load_scene(scene_path("cbox.xml"), res=16)
    out = []
    for boundary in (True, False):
        params = pathgrad.parameters(scene, "red.reflectance.value")
        img = pathgrad.render(scene, params, spp=4, boundary=boundary)
        dr.backward(dr.sum(img, axis=None))
        out.append(np.array(dr.grad(params["red.reflectance.value"])))
        dr.disable_grad(params["red.reflectance.value"])
    np.testing.assert_allclose(out[0], out[1], rtol=1e-5)


def test_split_terms_sum_to_total():
    scene = object_scene({"ball": icosphere(3, 0.8, name="ball", smooth=False, bsdf=diffuse(0.2))},
                         res=16)
    params = pathgrad.parameters(scene, "ball.vertex_positions")
    n = vertex_count(scene, "ball.vertex_positions")
    t = mi.Float(np.tile([1.0, 0, 0], n).astype(np.float32))
    terms = pathgrad.gradient_images(scene, params, {"ball.vertex_positions": t}, spp=16)
    b = np.array(terms["boundary"])
    i = np.array(terms["interior"])
    assert np.abs(b).sum() > 10 * np.abs(i).sum()   # translation: silhouettes dominate
    np.testing.assert_allclose(np.array(terms["total"]), b + i, rtol=1e-6, atol=1e-6)


def test_crop_window():
    """A crop window: the boundary image covers the crop only, edges are
    clipped to it, and samples splat with the crop offset. (The crop is set
    when loading: Mitsuba 3.9.1's sensor does not follow a crop changed
    later through ``mi.traverse``.)"""
    ball = icosphere(3, 0.8, name="ball", smooth=False, bsdf=diffuse(0.2))
    scene = object_scene({"ball": ball}, res=40, film=dict(
        crop_offset_x=14, crop_offset_y=8, crop_width=20, crop_height=24))
    assert tuple(pathgrad.render(scene, spp=1).shape[:2]) == (24, 20)
    check(scene, "ball.vertex_positions", [1, 0.4, 0], eps=0.005)


def test_thin_lens_sensor_gives_clear_error():
    # (orthographic sensors are supported: tests/test_camera_gradients.py)
    T = mi.ScalarTransform4f
    scene = pathgrad.load_scene({
        "type": "scene", "integrator": {"type": "pathgrad"},
        "sensor": {"type": "thinlens", "aperture_radius": 0.05, "focus_distance": 4,
                   "to_world": T().look_at(origin=[0, 0, 4], target=[0, 0, 0], up=[0, 1, 0]),
                   "film": {"type": "hdrfilm", "width": 8, "height": 8}},
        "ball": icosphere(1, 0.8, name="ball")})
    params = pathgrad.parameters(scene, "ball.vertex_positions")
    with pytest.raises(NotImplementedError, match="perspective"):
        img = pathgrad.render(scene, params, spp=1)
        dr.backward(dr.sum(img, axis=None))
    # without the boundary term it renders
    img = pathgrad.render(scene, params, spp=1, boundary=False)
    dr.backward(dr.sum(img, axis=None))
