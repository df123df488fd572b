"""Pinhole-camera geometry for boundary sampling: projection of world points
to film coordinates (differentiable), camera rays through film points, and
the film region that the primal pass samples, with its filter normalisation.

Film coordinates are in pixels of the *full* film (x right, y down); the crop
window starts at ``crop_offset``. Projection follows Mitsuba's ``perspective``
sensor (checked against ``Sensor.sample_direction`` in the tests).
"""

from __future__ import annotations

import math

import drjit as dr
import mitsuba as mi
import numpy as np


def _scalar(x) -> float:
    return float(x[0]) if dr.is_array_v(x) else float(x)


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
        self.near = _scalar(p["near_clip"])

        rfilter = film.rfilter()
        self.rfilter = rfilter
        border = rfilter.border_size() if film.sample_border() else 0
        lo = np.array(film.crop_offset(), float) - border
        hi = lo + np.array(film.crop_size(), float) + 2 * border
        #: region [lo, hi] of film coordinates where camera samples are drawn
        self.region_lo, self.region_hi = lo, hi

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

    def rays(self, pos: mi.Point2f) -> tuple[mi.Ray3f, mi.Spectrum]:
        """Camera rays through film points ``pos`` (full-film pixels)."""
        uv = (pos - self.crop_offset) / self.crop_size
        return self.sensor.sample_ray(self.sensor.shutter_open(), 0.5, uv, mi.Point2f(0.5))

    # ------------------------------------------------------------- filtering
    def normalisation(self) -> np.ndarray:
        """Per-pixel denominator W_p = ∫ k_p(u) du over the sampled region,
        shape (H, W) of the crop. The primal estimate of pixel p is
        Σ k_p(u_i) L_i / Σ k_p(u_i), whose expectation is ∫ k_p L / W_p.
        Computed once per camera."""
        if getattr(self, "_norm", None) is not None:
            return self._norm
        r = float(self.rfilter.radius())
        xs = np.linspace(-r, r, 2001)
        with dr.suspend_grad():
            k = np.array(self.rfilter.eval(mi.Float(xs)), np.float64).ravel()

        def axis(n, off, lo, hi):
            centres = off + np.arange(n) + 0.5
            out = np.empty(n)
            for i, c in enumerate(centres):
                m = (c + xs >= lo) & (c + xs <= hi)
                out[i] = np.trapezoid(np.where(m, k, 0.0), xs)
            return out

        cw, ch = (int(v) for v in self.crop_size)
        wx = axis(cw, float(self.crop_offset[0]), self.region_lo[0], self.region_hi[0])
        wy = axis(ch, float(self.crop_offset[1]), self.region_lo[1], self.region_hi[1])
        self._norm = wy[:, None] * wx[None, :]
        return self._norm
