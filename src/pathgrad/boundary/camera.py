"""Pinhole-camera geometry for boundary sampling: projection of world points
to film coordinates (differentiable), camera rays through film points, and
the film region that camera samples cover (:class:`pathgrad.film.FilmRegion`).

Film coordinates are in pixels of the *full* film (x right, y down); the crop
window starts at ``crop_offset``. Projection follows Mitsuba's ``perspective``
sensor (checked against ``Sensor.sample_direction`` in ``tests/test_camera.py``).

:func:`camera` hands out one :class:`PinholeCamera` per sensor, rebuilt only
when the sensor's pose, field of view or film change, so the filter
normalisation it carries is computed once.
"""

from __future__ import annotations

import math

import drjit as dr
import mitsuba as mi

from ..film import FilmRegion


def _scalar(x) -> float:
    return float(x[0]) if dr.is_array_v(x) else float(x)


def _index(x):
    """Identity of a Dr.Jit value (its variable index) or the value itself:
    it changes when ``params.update()`` writes a new value, and reading it
    does not wait for the device."""
    return x.index if dr.is_array_v(x) and dr.is_jit_v(x) else _scalar(x)


def _signature(sensor: mi.Sensor) -> tuple:
    """What the projection depends on, without host synchronisation."""
    p = mi.traverse(sensor)
    film = sensor.film()
    m = sensor.world_transform().matrix
    keys = ("x_fov", "principal_point_offset_x", "principal_point_offset_y", "near_clip")
    return (tuple(_index(m[i][j]) for i in range(4) for j in range(4)),
            tuple(_index(p[k]) if k in p else None for k in keys),
            tuple(film.size()), tuple(film.crop_size()), tuple(film.crop_offset()),
            film.sample_border(), type(sensor).__name__)


class PinholeCamera:
    """Projection for a Mitsuba ``perspective`` sensor.

    Raises ``NotImplementedError`` for other sensor types (boundary sampling
    needs the pinhole projection)."""

    def __init__(self, sensor: mi.Sensor):
        p = mi.traverse(sensor)
        if "x_fov" not in p or sensor.needs_aperture_sample():
            raise NotImplementedError(
                "pathgrad's boundary term needs a 'perspective' (pinhole) sensor; "
                f"got {type(sensor).__name__}. Use a perspective camera, or render "
                "with boundary=False (geometry gradients will then miss silhouettes).")
        film = sensor.film()
        self.sensor = sensor
        self.size = mi.ScalarVector2f(film.size())
        self.crop_offset = mi.ScalarVector2f(film.crop_offset())
        self.crop_size = mi.ScalarVector2f(film.crop_size())
        fov = _scalar(p["x_fov"])
        self.focal = 0.5 * float(self.size[0]) / math.tan(math.radians(fov) / 2)
        self.principal = mi.ScalarVector2f(
            0.5 * self.size[0] - _scalar(p["principal_point_offset_x"]) * self.size[0],
            0.5 * self.size[1] - _scalar(p["principal_point_offset_y"]) * self.size[1])
        to_world = sensor.world_transform()
        self.to_camera = to_world.inverse()
        self.origin = to_world @ mi.Point3f(0, 0, 0)
        # world directions of the camera's x and y axes
        self._axes = (to_world @ mi.Vector3f(1, 0, 0), to_world @ mi.Vector3f(0, 1, 0))
        self.near = _scalar(p["near_clip"])
        #: where camera samples are drawn, with the filter's normalisation
        self.region = FilmRegion(film)

    # ------------------------------------------------------------- geometry
    def camera_space(self, p: mi.Point3f) -> mi.Point3f:
        return self.to_camera @ p

    def project(self, p: mi.Point3f) -> tuple[mi.Point2f, mi.Float]:
        """Film coordinates (pixels, full film) and depth of world points ``p``
        (AD-attached if ``p`` is). Only meaningful where depth > 0."""
        q = self.to_camera @ p
        inv_z = dr.rcp(q.z)
        u = self.principal.x - self.focal * q.x * inv_z
        v = self.principal.y - self.focal * q.y * inv_z
        return mi.Point2f(u, v), q.z

    def direction_derivatives(self) -> tuple[mi.Vector3f, mi.Vector3f]:
        """∂d/∂u and ∂d/∂v (per pixel) of the ray direction ``d`` scaled to
        unit depth, ``x = origin + depth · d(u, v)``: the inverse of
        :meth:`project`."""
        return self._axes[0] * (-1 / self.focal), self._axes[1] * (-1 / self.focal)

    def rays(self, pos: mi.Point2f) -> tuple[mi.Ray3f, mi.Spectrum]:
        """Camera rays through film points ``pos`` (full-film pixels)."""
        uv = (pos - self.crop_offset) / self.crop_size
        return self.sensor.sample_ray(self.sensor.shutter_open(), 0.5, uv, mi.Point2f(0.5))


def depth_corrected(t, z0, z1):
    """Parameter along a 3D segment of the point at parameter ``t`` along
    its image in the film, the segment's ends having camera depths ``z0``
    (t = 0) and ``z1`` (t = 1): ``t z0 / ((1 - t) z1 + t z0)``. Unitless;
    ``t`` itself where the denominator is not positive (no point in front;
    an absolute floor such as 1e-20 would be a length)."""
    den = (1 - t) * z1 + t * z0
    return dr.select(den > 0, t * z0 / den, t)


#: cameras by sensor id: (sensor, signature, camera); a few kept (sensors of
#: scenes no longer used are dropped oldest first)
_cameras: dict = {}
_MAX_CAMERAS = 16


def camera(sensor: mi.Sensor) -> PinholeCamera:
    """The :class:`PinholeCamera` of ``sensor``, cached until the sensor's
    pose, field of view or film change."""
    sig = _signature(sensor)
    hit = _cameras.get(id(sensor))
    if hit is not None and hit[0] is sensor and hit[1] == sig:
        return hit[2]
    cam = PinholeCamera(sensor)
    _cameras.pop(id(sensor), None)
    _cameras[id(sensor)] = (sensor, sig, cam)
    while len(_cameras) > _MAX_CAMERAS:
        _cameras.pop(next(iter(_cameras)))
    return cam
