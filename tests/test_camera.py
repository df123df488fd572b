"""Camera projections (boundary.camera) against Mitsuba's perspective and
orthographic sensors, and the per-sensor film-region cache."""
import drjit as dr
import mitsuba as mi
import numpy as np
import pytest

import pathgrad
from pathgrad.boundary.camera import Camera, camera

T = mi.ScalarTransform4f


def sensor(kind="perspective", **kw):
    film = {"type": "hdrfilm", "width": 40, "height": 30, "rfilter": {"type": "box"}}
    film.update(kw.pop("film", {}))
    view = T().look_at(origin=[1, 2, 4], target=[0, 0, 0], up=[0, 1, 0])
    d = {"type": kind, "film": film}
    if kind == "perspective":
        d.update(fov=50, to_world=view)
    else:   # scaled camera space: a 1.6 x 1.2 view
        d.update(to_world=view @ T().scale([0.8, 0.8, 1]))
    d.update(kw)
    return mi.load_dict(d)


CASES = {
    "plain": {},
    "fov_y, principal point": dict(fov_axis="y", principal_point_offset_x=0.1,
                                   principal_point_offset_y=-0.05),
    "crop window": dict(film=dict(crop_offset_x=5, crop_offset_y=3, crop_width=20, crop_height=16)),
}


def points(n=64, seed=0):
    rng = np.random.default_rng(seed)
    p = rng.uniform(-0.6, 0.6, (n, 3)).astype(np.float32)
    return mi.Point3f(*(mi.Float(p[:, i]) for i in range(3)))


@pytest.mark.parametrize("case", list(CASES))
def test_projection_matches_sample_direction(case):
    s = sensor(**CASES[case])
    cam = Camera(s)
    p = points()
    u, z = cam.project(p)
    it = dr.zeros(mi.Interaction3f, dr.width(p))
    it.p = p
    ds, w = s.sample_direction(it, mi.Point2f(0.5, 0.5))
    seen = np.array(w.x) > 0            # inside the crop window
    assert seen.sum() > 10
    # Mitsuba's uv is relative to the crop window
    uv = np.array(ds.uv)[:, seen] if np.array(ds.uv).shape[0] == 2 else np.array(ds.uv)[seen].T
    ours = np.array(u - cam.crop_offset)
    ours = ours[:, seen] if ours.shape[0] == 2 else ours[seen].T
    np.testing.assert_allclose(ours, uv, atol=2e-3)
    assert np.all(np.array(z) > 0)


ORTHO_CASES = {"orthographic": dict(kind="orthographic"),
               "orthographic, crop window": dict(kind="orthographic", film=dict(
                   crop_offset_x=5, crop_offset_y=3, crop_width=20, crop_height=16))}


@pytest.mark.parametrize("case", list(CASES) + list(ORTHO_CASES))
def test_rays_pass_through_their_film_point(case):
    s = sensor(**{**CASES, **ORTHO_CASES}[case])
    cam = Camera(s)
    rng = np.random.default_rng(1)
    pos = mi.Point2f(mi.Float(rng.uniform(6, 24, 50).astype(np.float32)),
                     mi.Float(rng.uniform(4, 18, 50).astype(np.float32)))
    ray, _ = cam.rays(pos)
    back, _ = cam.project(ray(2.0))
    np.testing.assert_allclose(np.array(back), np.array(pos), atol=2e-3)


def test_camera_follows_the_sensor_and_keeps_its_film_region():
    scene = pathgrad.scenes.object_scene({})
    s = scene.sensors()[0]
    cam = camera(s)
    assert cam.region is camera(s).region
    assert cam.region.normalisation() is camera(s).region.normalisation()
    params = mi.traverse(s)
    params["to_world"] = mi.Transform4f().translate([0.5, 0, 5])
    params.update()
    moved = camera(s)
    assert moved is not cam
    np.testing.assert_allclose(np.array(moved.origin).ravel(), [0.5, 0, 5], atol=1e-6)


@pytest.mark.parametrize("case", list(CASES) + list(ORTHO_CASES))
def test_ray_to_a_point_is_the_sensor_ray_through_its_projection(case):
    """ray_to(x) is the sensor's own ray through project(x), and film_velocity
    is the derivative of project (central differences)."""
    s = sensor(**{**CASES, **ORTHO_CASES}[case])
    cam = Camera(s)
    p = points(32, seed=2)
    u, _ = cam.project(p)
    ray_s, _ = cam.rays(u)
    ray_x, dist = cam.ray_to(p)
    d_s = ray_s.d + dr.zeros(mi.Vector3f, 32)     # (one direction for an orthographic camera)
    np.testing.assert_allclose(np.array(ray_x.d), np.array(d_s), atol=1e-4)
    np.testing.assert_allclose(np.array(ray_x(dist)), np.array(p), atol=1e-4)
    t = mi.Vector3f(0.3, -0.2, 0.5)
    h = 1e-3
    fd = (cam.project(p + h * t)[0] - cam.project(p - h * t)[0]) / (2 * h)   # (p ± h t: a Vector3f)
    v = cam.film_velocity(p, t) + dr.zeros(mi.Vector2f, 32)    # (constant when orthographic)
    np.testing.assert_allclose(np.array(v), np.array(fd), rtol=2e-2, atol=2e-2)


def test_to_viewer_points_at_the_camera():
    p = points(8)
    persp, ortho = Camera(sensor()), Camera(sensor("orthographic"))
    np.testing.assert_allclose(np.array(persp.to_viewer(p)), np.array(persp.origin - p), atol=1e-6)
    d = np.array(ortho.to_viewer(p) + dr.zeros(mi.Vector3f, 8)).reshape(3, -1)
    np.testing.assert_allclose(d, np.repeat(-np.array(ortho.forward).reshape(3, 1), 8, 1), atol=1e-6)
    view = np.array([-1, -2, -4]) / np.sqrt(21)        # look_at from (1, 2, 4) to the origin
    np.testing.assert_allclose(d[:, 0], -view, atol=1e-5)


def test_sensors_without_a_projection_are_refused():
    thin = mi.load_dict({"type": "thinlens", "aperture_radius": 0.1, "focus_distance": 3,
                         "film": {"type": "hdrfilm", "width": 8, "height": 8}})
    with pytest.raises(NotImplementedError, match="perspective"):
        camera(thin)
