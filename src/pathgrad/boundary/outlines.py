r"""Outlines of Mitsuba's analytic shapes seen from a viewpoint, for
boundary sampling (the analytic counterpart of
:mod:`pathgrad.boundary.silhouette`).

Each outline is a closed 3D curve :math:`x(\varphi)`, :math:`\varphi \in
[0, 1)`, across whose image radiance can jump:

* disk: the unit circle of its local xy plane, ``to_world @ (cos 2πφ, sin 2πφ, 0)``
  (a flat shape's rim is an outline from everywhere);
* sphere (centre :math:`C`, radius :math:`r`): its contour seen from the
  viewpoint, the circle where rays from it graze the sphere. With
  :math:`v = c - C` for a viewpoint :math:`c`, it has centre :math:`C + k v`,
  radius :math:`r\sqrt{1 - k}`, :math:`k = r^2/|v|^2`, in the plane normal to
  :math:`v`; for a viewpoint at infinity (an orthographic camera) the great
  circle normal to the viewing direction (:math:`k = 0`).

A viewpoint is homogeneous, as in :class:`pathgrad.boundary.camera.Camera`:
``to_viewer(p)`` points from ``p`` towards it and ``w`` is 1 for a point, 0
for a direction.
"""

from __future__ import annotations

import math

import drjit as dr
import mitsuba as mi


class Viewpoint:
    """A point ``x`` (e.g. a shading point) as a viewpoint for :func:`outline`."""

    w = 1.0

    def __init__(self, x: mi.Point3f):
        self.x = x

    def to_viewer(self, p: mi.Point3f) -> mi.Vector3f:
        return self.x - p


def outline(kind: str, to_world, view, φ: mi.Float) -> tuple[mi.Point3f, mi.Vector3f]:
    """Point ``x(φ)`` of the outline of an analytic shape of ``kind`` with
    transform ``to_world``, seen from ``view`` (a camera, or a
    :class:`Viewpoint`), and its tangent ``dx/dφ`` (scene units per unit φ).
    Attached if ``to_world`` or the viewpoint is."""
    a = (2 * math.pi) * φ
    if kind == "disk":
        x = to_world @ mi.Point3f(dr.cos(a), dr.sin(a), 0.0)
        return x, to_world @ mi.Vector3f(-dr.sin(a), dr.cos(a), 0.0) * (2 * math.pi)
    # sphere: the contour seen from the viewpoint
    centre = to_world @ mi.Point3f(0, 0, 0)
    r = dr.norm(to_world @ mi.Vector3f(1, 0, 0))
    v = view.to_viewer(centre)
    k = dr.square(r) / dr.squared_norm(v) if view.w else mi.Float(0.0)
    rho = r * dr.sqrt(dr.maximum(1 - k, 0.0))
    e1, e2 = mi.coordinate_system(dr.normalize(v))
    # (typed: `to_camera @` treats a plain 3-array as a vector, not a point)
    x = mi.Point3f(centre + k * v + rho * (dr.cos(a) * e1 + dr.sin(a) * e2))
    return x, mi.Vector3f((2 * math.pi) * rho * (dr.cos(a) * e2 - dr.sin(a) * e1))


def per_shape(kinds, transforms, which: mi.UInt32, fn):
    """``fn(kind, to_world)`` of the shape each lane belongs to (``which``:
    index into ``kinds`` and ``transforms``); evaluated for every shape and
    selected per lane, as scenes have few analytic shapes."""
    out = None
    for i, (kind, T) in enumerate(zip(kinds, transforms)):
        value = fn(kind, T)
        out = value if out is None else dr.select(which == i, value, out)
    return out
