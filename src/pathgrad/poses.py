"""Poses: moving a transform (a sensor's or a shape's ``to_world``) along a
path of rigid motions and scalings, differentiably.

A *pose direction* says how a transform moves per unit of a scalar ``s``:

* ``translate``: world-space translation (scene units per unit ``s``);
* ``rotate``: rotation vector (axis times angle, **degrees** per unit ``s``)
  in world axes, about the transform's own origin (``to_world @ (0, 0, 0)``:
  the camera centre, the centre of a sphere or disk);
* ``scale``: relative uniform scaling about that origin (per unit ``s``;
  Mitsuba's perspective sensor refuses scaled poses).

:func:`moved` applies it; with ``s`` an attached ``mi.Float`` the result is
an attached transform, ready for ``params[key] = ...; params.update()``.
:func:`pathgrad.gradcheck` accepts such a direction (a dict) for transform
keys.
"""

from __future__ import annotations

from typing import Mapping

import drjit as dr
import mitsuba as mi
import numpy as np

#: the entries a pose direction may have
POSE_ENTRIES = ("translate", "rotate", "scale")


def check_direction(direction: Mapping, key: str = "to_world") -> dict:
    """The pose direction as numpy values; ValueError naming ``key`` for
    unknown entries, wrong sizes or an all-zero direction."""
    if not isinstance(direction, Mapping):
        raise ValueError(f"the direction for the transform '{key}' must be a dict with entries "
                         f"{POSE_ENTRIES} (e.g. {{'translate': [1, 0, 0]}}), got {direction!r}")
    unknown = set(direction) - set(POSE_ENTRIES)
    if unknown:
        raise ValueError(f"unknown pose direction entries {sorted(unknown)} for '{key}': use "
                         f"{POSE_ENTRIES}")
    out = {"translate": np.asarray(direction.get("translate", (0, 0, 0)), np.float64).ravel(),
           "rotate": np.asarray(direction.get("rotate", (0, 0, 0)), np.float64).ravel(),
           "scale": float(direction.get("scale", 0.0))}
    for k in ("translate", "rotate"):
        if out[k].size != 3:
            raise ValueError(f"pose direction '{k}' for '{key}' needs 3 values, got {out[k].size}")
    if not (np.any(out["translate"]) or np.any(out["rotate"]) or out["scale"]):
        raise ValueError(f"the pose direction for '{key}' is zero: give a translate, rotate "
                         "or scale entry")
    return out


def moved(base, s, direction: Mapping):
    """``base`` (a Mitsuba transform) moved by ``s`` (float or ``mi.Float``,
    attached or not) along the pose ``direction`` (see the module
    docstring): ``T(s) = Tr(c + s t) R(s ω) S(1 + s σ) Tr(-c) base`` with
    ``c`` the origin of ``base``."""
    d = check_direction(direction)
    T = type(base)
    c = base @ mi.Point3f(0, 0, 0)
    c = mi.Vector3f(c.x, c.y, c.z)
    m = T().translate(c + s * mi.Vector3f(*map(float, d["translate"])))
    angle = float(np.linalg.norm(d["rotate"]))
    if angle > 0:
        m = m @ T().rotate(mi.Vector3f(*map(float, d["rotate"] / angle)), s * angle)
    if d["scale"]:
        k = 1 + s * d["scale"]
        m = m @ T().scale(mi.Vector3f(k, k, k))
    return m @ T().translate(-c) @ base


def is_transform(value) -> bool:
    """``value`` is a Mitsuba transform (a pose; Dr.Jit arrays such as
    ``Color3f`` have a ``matrix`` attribute too, so test the type)."""
    return isinstance(value, (mi.Transform4f, mi.AffineTransform4f))


def detached(transform):
    """A detached copy of a transform."""
    return type(transform)(dr.detach(transform.matrix))
