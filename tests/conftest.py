"""Shared fixtures: scenes from ../scenes and small scenes built in code."""
import os

import pytest

import pathgrad  # noqa: F401  (selects the variant first)
import mitsuba as mi

SCENES = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "scenes")


def scene_path(name: str) -> str:
    return os.path.join(SCENES, name)


def floor_scene(res: int = 32, max_depth: int = 3):
    """A finely tessellated, smooth-shaded floor filling the whole view, lit by
    a point light and a small area light, under a diffuse ceiling. Moving the
    floor's vertices changes shading only: no silhouette or shadow edge is in
    view, so the interior term alone must match finite differences."""
    T = mi.ScalarTransform4f
    return pathgrad.load_scene({
        "type": "scene",
        "integrator": {"type": "pathgrad", "max_depth": max_depth},
        "sensor": {"type": "perspective", "fov": 30,
                   "to_world": T().look_at(origin=[0, 2.5, 1.2], target=[0, 0, 0], up=[0, 1, 0]),
                   "film": {"type": "hdrfilm", "width": res, "height": res,
                            "rfilter": {"type": "box"}, "pixel_format": "rgb"},
                   "sampler": {"type": "independent"}},
        "floor": pathgrad.shapes.grid(24, 6.0, name="floor", bsdf={
            "type": "diffuse", "reflectance": {"type": "rgb", "value": [0.6, 0.5, 0.4]}}),
        "light": {"type": "point", "position": [0.5, 1.5, 0.3],
                  "intensity": {"type": "rgb", "value": 5}},
        "ceiling": {"type": "rectangle", "bsdf": {"type": "diffuse"},
                    "to_world": T().translate([0, 3, 0]).rotate([1, 0, 0], 90).scale(3)},
        "lamp": {"type": "rectangle",
                 "to_world": T().translate([-1, 2, -1]).rotate([1, 0, 0], 90).scale(0.5),
                 "emitter": {"type": "area", "radiance": {"type": "rgb", "value": 8}}},
    })


@pytest.fixture(scope="session")
def cbox_path():
    return scene_path("cbox.xml")


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
    return pathgrad.load_scene(d)


def diffuse(r, g=None, b=None):
    return {"type": "diffuse", "reflectance": {"type": "rgb",
                                               "value": [r, r if g is None else g, r if b is None else b]}}
