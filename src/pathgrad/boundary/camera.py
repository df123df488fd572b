"""Camera geometry for boundary sampling: projection of world points to film
coordinates, camera rays through film points and towards world points, and
the film region that camera samples cover (:class:`pathgrad.film.FilmRegion`),
for Mitsuba's ``perspective`` (pinhole) and ``orthographic`` sensors.

Film coordinates are in pixels of the *full* film (x right, y down); the crop
window starts at ``crop_offset``. The projections follow Mitsuba's sensors
(checked against ``Sensor.sample_direction`` and ``Sensor.sample_ray`` in
``tests/test_camera.py``):

* perspective: ``u = c_u - f q_x / q_z``, ``v = c_v - f q_y / q_z`` with
  ``q`` the point in camera space, ``f = W / (2 tan(fov_x / 2))`` pixels;
* orthographic: ``u = W/2 - (W/2) q_x``, ``v = H/2 - (W/2) q_y`` (camera
  space x in [-1, 1] spans the film width; ``to_world`` scales it).

Everything the camera computes is attached to the sensor's ``to_world`` and
``x_fov`` when those carry gradients (Mitsuba flags them non-differentiable;
pathgrad differentiates them, see :mod:`pathgrad.checks`), so a boundary
estimator that re-projects a sample with AD gets the motion of its image due
to the camera as well as to the scene.

World points are converted to ``mi.Point3f`` before a transform is applied:
in Mitsuba's Python arithmetic ``Point3f + Vector3f`` is a ``Vector3f``, and
``transform @ vector`` drops the translation.

The viewpoint is *homogeneous*: ``(c, 1)`` for a pinhole at ``c``, and
``(-d, 0)`` for an orthographic camera looking along ``d``, so that
:meth:`Camera.to_viewer` (``c - w p``) points from a scene point towards the
camera in both cases and the silhouette and terminator tests are written once.
"""

from __future__ import annotations

import math

import drjit as dr
import mitsuba as mi

from ..film import FilmRegion

#: Mitsuba sensor classes whose projection is implemented here
KINDS = {"PerspectiveCamera": "perspective", "OrthographicCamera": "orthographic"}


def _scalar(x) -> float:
    return float(x[0]) if dr.is_array_v(x) else float(x)


def _value(x) -> mi.Float:
    """A parameter as a (possibly attached) Float, without reading it."""
    return x if dr.is_array_v(x) and dr.is_jit_v(x) else mi.Float(_scalar(x))


def kind(sensor: mi.Sensor) -> str | None:
    """'perspective', 'orthographic', or None for other sensors."""
    name = sensor.class_name() if hasattr(sensor, "class_name") else type(sensor).__name__
    return KINDS.get(name)


class Camera:
    """Projection of a Mitsuba ``perspective`` or ``orthographic`` sensor,
    attached to its pose and field of view.

    Raises ``NotImplementedError`` for other sensor types (boundary sampling
    needs the projection)."""

    def __init__(self, sensor: mi.Sensor, region: FilmRegion | None = None):
        self.kind = kind(sensor)
        if self.kind is None or sensor.needs_aperture_sample():
            raise NotImplementedError(
                "pathgrad's boundary term needs a 'perspective' (pinhole) or 'orthographic' "
                f"sensor; got {type(sensor).__name__} ({sensor.class_name()}). Use one of "
                "those, or render with boundary=False (geometry gradients will then miss "
                "silhouettes).")
        p = mi.traverse(sensor)
        film = sensor.film()
        self.sensor = sensor
        self.size = mi.ScalarVector2f(film.size())
        self.crop_offset = mi.ScalarVector2f(film.crop_offset())
        self.crop_size = mi.ScalarVector2f(film.crop_size())
        # Floats, not Python numbers: a read here would be a host sync, which
        # a frozen step (pathgrad.multiview) cannot record
        self.near = _value(p["near_clip"])
        with dr.resume_grad():   # attached to the pose and fov even when built detached
            w = float(self.size[0])
            if self.kind == "perspective":
                fov = _value(p["x_fov"])
                self.focal = 0.5 * w / dr.tan(fov * (math.pi / 360))
                self.principal = mi.Vector2f(
                    0.5 * self.size[0] - _value(p["principal_point_offset_x"]) * self.size[0],
                    0.5 * self.size[1] - _value(p["principal_point_offset_y"]) * self.size[1])
            else:
                self.focal = mi.Float(0.5 * w)          # pixels per camera-space unit
                self.principal = 0.5 * self.size
            to_world = sensor.world_transform()
            self.to_world = to_world
            self.to_camera = to_world.inverse()
            self.origin = to_world @ mi.Point3f(0, 0, 0)
            #: unit viewing direction (the camera's +z axis in the world)
            self.forward = dr.normalize(to_world @ mi.Vector3f(0, 0, 1))
            # world directions of the camera's x and y axes (scaled by to_world)
            self._axes = (to_world @ mi.Vector3f(1, 0, 0), to_world @ mi.Vector3f(0, 1, 0))
        #: 1 for a pinhole, 0 for a viewpoint at infinity (orthographic)
        self.w = 1.0 if self.kind == "perspective" else 0.0
        #: where camera samples are drawn, with the filter's normalisation
        self.region = region if region is not None else FilmRegion(film)

    # ------------------------------------------------------------- geometry
    def camera_space(self, p: mi.Point3f) -> mi.Point3f:
        return self.to_camera @ p

    def project(self, p: mi.Point3f) -> tuple[mi.Point2f, mi.Float]:
        """Film coordinates (pixels, full film) and camera-space depth of
        world points ``p`` (attached if ``p`` or the camera is). Only
        meaningful where depth > 0 (perspective) or > near (both)."""
        q = self.to_camera @ mi.Point3f(p)
        k = self.focal * dr.rcp(q.z) if self.w else self.focal
        return mi.Point2f(self.principal.x - k * q.x, self.principal.y - k * q.y), q.z

    def film_velocity(self, x: mi.Point3f, t: mi.Vector3f) -> mi.Vector2f:
        """Derivative of the film position of ``x`` along the world vector
        ``t`` (pixels per unit of ``t``): the projection's Jacobian times ``t``."""
        q, dq = self.to_camera @ mi.Point3f(x), self.to_camera @ mi.Vector3f(t)
        if self.w:
            inv_z = dr.rcp(q.z)
            return -self.focal * mi.Vector2f(dq.x - q.x * dq.z * inv_z,
                                             dq.y - q.y * dq.z * inv_z) * inv_z
        return -self.focal * mi.Vector2f(dq.x, dq.y)

    def to_viewer(self, p: mi.Point3f) -> mi.Vector3f:
        """From ``p`` towards the camera, ``c - w p``: ``c - p`` for a
        pinhole, ``-forward`` (unit) for an orthographic camera. Only its
        direction is meaningful (its length is a distance for a pinhole)."""
        return self.origin - p if self.w else -self.forward

    def segment_parameter(self, t, z0, z1):
        """Parameter along a 3D segment of the point at parameter ``t`` along
        its image in the film (ends at camera depths ``z0``, ``z1``): the
        perspective correction :func:`depth_corrected`, or ``t`` itself for
        an orthographic camera (an affine projection)."""
        return depth_corrected(t, z0, z1) if self.w else t

    def point_derivatives(self, depth) -> tuple[mi.Vector3f, mi.Vector3f]:
        """∂x/∂u and ∂x/∂v (scene units per pixel) of the point at camera
        depth ``depth`` on the camera ray through film point (u, v): the
        inverse of :meth:`project` at fixed depth."""
        k = (depth if self.w else 1.0) * (-1 / self.focal)
        return self._axes[0] * k, self._axes[1] * k

    def ray_to(self, x: mi.Point3f) -> tuple[mi.Ray3f, mi.Float]:
        """The camera ray that reaches the world point ``x`` and the distance
        from its origin to ``x``: from the pinhole, or (orthographic) from
        the point of the near plane that ``x`` projects to."""
        if self.w:
            o = self.origin
        else:
            q = self.to_camera @ mi.Point3f(x)
            o = self.to_world @ mi.Point3f(q.x, q.y, self.near)
        d = x - o
        dist = dr.norm(d)
        return mi.Ray3f(o, d / dist), dist

    def rays(self, pos: mi.Point2f) -> tuple[mi.Ray3f, mi.Spectrum]:
        """Camera rays through film points ``pos`` (full-film pixels),
        attached to the sensor's parameters as Mitsuba computes them."""
        uv = (pos - self.crop_offset) / self.crop_size
        return self.sensor.sample_ray(self.sensor.shutter_open(), 0.5, uv, mi.Point2f(0.5))


def depth_corrected(t, z0, z1):
    """Parameter along a 3D segment of the point at parameter ``t`` along
    its perspective image in the film, the segment's ends having camera
    depths ``z0`` (t = 0) and ``z1`` (t = 1): ``t z0 / ((1 - t) z1 + t z0)``.
    Unitless; ``t`` itself where the denominator is not positive (no point
    in front; an absolute floor such as 1e-20 would be a length)."""
    den = (1 - t) * z1 + t * z0
    return dr.select(den > 0, t * z0 / den, t)


def _film_signature(sensor: mi.Sensor) -> tuple:
    film = sensor.film()
    return (tuple(film.size()), tuple(film.crop_size()), tuple(film.crop_offset()),
            film.sample_border(), film.rfilter().class_name(), float(film.rfilter().radius()))


#: film regions by sensor id: (sensor, film signature, region); a few kept
#: (sensors of scenes no longer used are dropped oldest first). The region
#: carries the filter normalisation, computed on the host once per film;
#: the camera geometry itself is rebuilt at every render (it is attached to
#: the pose, which may change at every step, and costs no host reads).
_regions: dict = {}
_MAX_CAMERAS = 16


def camera(sensor: mi.Sensor) -> Camera:
    """The :class:`Camera` of ``sensor`` (its film region cached until the
    film changes)."""
    return Camera(sensor, film_region(sensor))


def film_region(sensor: mi.Sensor) -> FilmRegion:
    """The :class:`~pathgrad.film.FilmRegion` of ``sensor``'s film, cached
    until the film changes (any sensor, also those :class:`Camera` does not
    model)."""
    sig = _film_signature(sensor)
    hit = _regions.get(id(sensor))
    if hit is None or hit[0] is not sensor or hit[1] != sig:
        _regions.pop(id(sensor), None)
        hit = _regions[id(sensor)] = (sensor, sig, FilmRegion(sensor.film()))
        while len(_regions) > _MAX_CAMERAS:
            _regions.pop(next(iter(_regions)))
    return hit[2]
