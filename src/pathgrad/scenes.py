"""Small scenes built in code, shared by the tests, benchmarks and examples.

Each function returns a loaded ``mi.Scene`` using the ``pathgrad``
integrator. Units: scene units (think metres); radiance in W/(m² sr).
"""

from __future__ import annotations

import mitsuba as mi

from . import shapes
from .api import load_scene

__all__ = ["diffuse", "object_scene", "floor_scene"]


def object_scene(shapes: dict, *, res: int = 32, rfilter: str = "box", sample_border=False,
                 env: float | None = 1.0, max_depth: int = 2, fov: float = 40.0,
                 origin=(0, 0, 4), lights: dict | None = None):
    """Objects in front of a camera at ``origin`` looking at the origin, over
    a constant environment of radiance ``env`` (None: black background)."""
    T = mi.ScalarTransform4f
    d = {"type": "scene",
         "integrator": {"type": "pathgrad", "max_depth": max_depth},
         "sensor": {"type": "perspective", "fov": fov,
                    "to_world": T().look_at(origin=list(origin), target=[0, 0, 0], up=[0, 1, 0]),
                    "film": {"type": "hdrfilm", "width": res, "height": res,
                             "rfilter": {"type": rfilter}, "pixel_format": "rgb",
                             "sample_border": sample_border},
                    "sampler": {"type": "independent"}}}
    if env is not None:
        d["sky"] = {"type": "constant", "radiance": {"type": "rgb", "value": env}}
    d.update(shapes)
    d.update(lights or {})
    return load_scene(d)


def diffuse(r, g=None, b=None):
    return {"type": "diffuse", "reflectance": {"type": "rgb",
                                               "value": [r, r if g is None else g, r if b is None else b]}}


def floor_scene(res: int = 32, max_depth: int = 3):
    """A finely tessellated, smooth-shaded floor filling the whole view, lit by
    a point light and a small area light, under a diffuse ceiling. Moving the
    floor's vertices changes shading only: no silhouette or shadow edge is in
    view, so the interior term alone must match finite differences."""
    T = mi.ScalarTransform4f
    return load_scene({
        "type": "scene",
        "integrator": {"type": "pathgrad", "max_depth": max_depth},
        "sensor": {"type": "perspective", "fov": 30,
                   "to_world": T().look_at(origin=[0, 2.5, 1.2], target=[0, 0, 0], up=[0, 1, 0]),
                   "film": {"type": "hdrfilm", "width": res, "height": res,
                            "rfilter": {"type": "box"}, "pixel_format": "rgb"},
                   "sampler": {"type": "independent"}},
        "floor": shapes.grid(24, 6.0, name="floor", bsdf={
            "type": "diffuse", "reflectance": {"type": "rgb", "value": [0.6, 0.5, 0.4]}}),
        "light": {"type": "point", "position": [0.5, 1.5, 0.3],
                  "intensity": {"type": "rgb", "value": 5}},
        "ceiling": {"type": "rectangle", "bsdf": {"type": "diffuse"},
                    "to_world": T().translate([0, 3, 0]).rotate([1, 0, 0], 90).scale(3)},
        "lamp": {"type": "rectangle",
                 "to_world": T().translate([-1, 2, -1]).rotate([1, 0, 0], 90).scale(0.5),
                 "emitter": {"type": "area", "radiance": {"type": "rgb", "value": 8}}},
    })
