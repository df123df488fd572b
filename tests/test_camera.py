"""Pinhole projection (boundary.camera) against Mitsuba's perspective sensor,
and the per-sensor camera cache."""
import drjit as dr
import mitsuba as mi
import numpy as np
import pytest

import pathgrad
from pathgrad.boundary.camera import PinholeCamera, camera

T = mi.ScalarTransform4f


def sensor(**kw):
    film = {"type": "hdrfilm", "width": 40, "height": 30, "rfilter": {"type": "box"}}
    film.update(kw.pop("film", {}))
    d = {"type": "perspective", "fov": 50,
         "to_world": T().look_at(origin=[1, 2, 4], target=[0, 0, 0], up=[0, 1, 0]),
         "film": film}
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
    cam = PinholeCamera(s)
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


@pytest.mark.parametrize("case", list(CASES))
def test_rays_pass_through_their_film_point(case):
    s = sensor(**CASES[case])
    cam = PinholeCamera(s)
    rng = np.random.default_rng(1)
    pos = mi.Point2f(mi.Float(rng.uniform(6, 24, 50).astype(np.float32)),
                     mi.Float(rng.uniform(4, 18, 50).astype(np.float32)))
    ray, _ = cam.rays(pos)
    back, _ = cam.project(ray(2.0))
    np.testing.assert_allclose(np.array(back), np.array(pos), atol=2e-3)


def test_camera_cached_per_sensor_until_it_moves():
    scene = pathgrad.scenes.object_scene({})
    s = scene.sensors()[0]
    cam = camera(s)
    assert camera(s) is cam
    assert cam.region.normalisation() is camera(s).region.normalisation()
    params = mi.traverse(s)
    params["to_world"] = mi.Transform4f().translate([0.5, 0, 5])
    params.update()
    moved = camera(s)
    assert moved is not cam
    np.testing.assert_allclose(np.array(moved.origin).ravel(), [0.5, 0, 5], atol=1e-6)


def test_non_pinhole_sensor_is_refused():
    ortho = mi.load_dict({"type": "orthographic", "film": {"type": "hdrfilm", "width": 8, "height": 8}})
    with pytest.raises(NotImplementedError, match="perspective"):
        camera(ortho)
