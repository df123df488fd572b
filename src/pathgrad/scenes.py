"""Small scenes built in code, shared by the tests, benchmarks and examples.

Each function returns a loaded ``mi.Scene`` using the ``pathgrad``
integrator. Units: scene units (think metres); radiance in W/(m² sr).
"""

from __future__ import annotations

import mitsuba as mi
import numpy as np

from . import shapes
from .api import load_scene

__all__ = ["diffuse", "object_scene", "floor_scene", "shadow_scene", "scaled_scene", "indirect_scene",
           "camera_scene", "multiview_scene", "view_directions", "sky"]


def object_scene(shapes: dict, *, res: int = 32, rfilter: str = "box", sample_border=False,
                 env: float | None = 1.0, max_depth: int = 2, fov: float = 40.0,
                 origin=(0, 0, 4), lights: dict | None = None, film: dict | None = None):
    """Objects in front of a camera at ``origin`` looking at the origin, over
    a constant environment of radiance ``env`` (None: black background).
    ``film``: extra film properties (e.g. a crop window)."""
    T = mi.ScalarTransform4f
    d = {"type": "scene",
         "integrator": {"type": "pathgrad", "max_depth": max_depth},
         "sensor": {"type": "perspective", "fov": fov,
                    "to_world": T().look_at(origin=list(origin), target=[0, 0, 0], up=[0, 1, 0]),
                    "film": {"type": "hdrfilm", "width": res, "height": res,
                             "rfilter": {"type": rfilter}, "pixel_format": "rgb",
                             "sample_border": sample_border, **(film or {})},
                    "sampler": {"type": "independent"}}}
    if env is not None:
        d["sky"] = {"type": "constant", "radiance": {"type": "rgb", "value": env}}
    d.update(shapes)
    d.update(lights or {})
    return load_scene(d)


def diffuse(r, g=None, b=None):
    """A ``diffuse`` BSDF dict with RGB albedo (r, g, b); grey when only ``r`` is given."""
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


def shadow_scene(light: str = "area", *, res: int = 32, occluder_center=(0.8, 1.2, 0.0),
                 camera_x: float | None = None, wall: bool = False, max_depth: int = 2):
    """A floor (8 x 8, y = 0) with an occluder (flat icosphere, radius 0.4)
    between it and a light; the camera looks straight down at a patch of the
    floor in the shadow's edge and sees neither the light nor the occluder.

    ``light``: ``'area'`` (a 0.8 x 0.8 mesh rectangle at y = 2.5 facing down,
    key ``light.vertex_positions``), ``'point'`` (key ``lamp``),
    ``'directional'`` (key ``sun``, light travelling along (-0.3, -1, 0.1)) or ``'env'``
    (a lat-long sky made here with a bright sun near the zenith).
    ``wall``: add a vertical 1 x 1 rectangle standing on the floor at x = 1.2
    (key ``wall``), lit from above, which shades the floor next to it; the
    camera then sees both.
    """
    import numpy as np
    T = mi.ScalarTransform4f
    d = {"type": "scene",
         "integrator": {"type": "pathgrad", "max_depth": max_depth},
         "floor": shapes.grid(4, 8.0, name="floor", smooth=False, bsdf=diffuse(0.8))}
    if not wall:
        d["occ"] = shapes.icosphere(1, 0.4, name="occ", center=occluder_center, smooth=False,
                                    bsdf=diffuse(0.5))
    else:
        wv = np.array([[1.2, 0, -0.5], [1.2, 0, 0.5], [1.2, 1, 0.5], [1.2, 1, -0.5]])
        d["wall"] = shapes.mesh_from_arrays("wall", wv, np.array([[0, 1, 2], [0, 2, 3]]),
                                            smooth=False, bsdf=diffuse(0.6))
    if light == "area":
        lv = np.array([[-0.4, 2.5, -0.4], [0.4, 2.5, -0.4], [0.4, 2.5, 0.4], [-0.4, 2.5, 0.4]])
        d["light"] = shapes.mesh_from_arrays(
            "light", lv, np.array([[0, 1, 2], [0, 2, 3]]), smooth=False,
            emitter={"type": "area", "radiance": {"type": "rgb", "value": 20}})
        cx = 2.1 if camera_x is None else camera_x
    elif light == "point":
        d["lamp"] = {"type": "point", "position": [0, 2.5, 0], "intensity": {"type": "rgb", "value": 10}}
        cx = 2.3 if camera_x is None else camera_x
    elif light == "directional":
        d["sun"] = {"type": "directional", "direction": [-0.3, -1.0, 0.1],
                    "irradiance": {"type": "rgb", "value": 3.0}}
        cx = 0.85 if camera_x is None else camera_x
    elif light == "env":
        # a dim sky with a bright sun near the zenith (lat-long, v = 0 is +y)
        h, w = 32, 64
        v, u = (np.mgrid[0:h, 0:w] + 0.5) / np.array([h, w])[:, None, None]
        sky = np.stack([0.15 + 0.1 * v, 0.2 + 0.1 * v, 0.35 + 0.1 * v], -1)
        sun = (((v - 0.06) ** 2 + ((u - 0.25) * 0.3) ** 2) < 0.05 ** 2)[..., None]
        sky = (sky + 60.0 * sun * np.array([1.0, 0.95, 0.85])).astype(np.float32)
        d["sky"] = {"type": "envmap", "bitmap": mi.Bitmap(sky)}
        cx = 0.8 if camera_x is None else camera_x
    else:
        raise ValueError(f"light must be 'area', 'point', 'directional' or 'env', got {light!r}")
    height = 1.6 if wall else 0.7
    d["sensor"] = {"type": "perspective", "fov": 60,
                   "to_world": T().look_at(origin=[cx, height, 0.01], target=[cx, 0, 0], up=[0, 0, -1]),
                   "film": {"type": "hdrfilm", "width": res, "height": res,
                            "rfilter": {"type": "box"}, "pixel_format": "rgb"},
                   "sampler": {"type": "independent"}}
    return load_scene(d)


def scaled_scene(scale: float = 1.0, *, res: int = 16, max_depth: int = 2,
                 emitting: bool = False):
    """One small scene at any size: every position (shapes, lights, camera,
    near and far clip) times ``scale``, the field of view kept.

    A smooth-shaded 12-vertex ball (radius 0.8, key ``ball.vertex_positions``)
    0.1 above a 6 x 6 floor, lit by a 0.8 x 0.8 mesh area light (``light``)
    and a point light (``lamp``, its intensity times ``scale``² so that the
    image does not change with the scale). ``emitting``: the ball is an
    area emitter and a constant sky of radiance 0.5 surrounds the scene
    (with ``max_depth=1`` the image is then made of camera rays alone).

    Mitsuba sets two floors (measured with this scene): rays it spawns
    from a surface start ``8.9e-5 (1 + max|p|)`` scene units off it, so
    below a scale of about 0.1 shadows and bounces change (the image by
    0.15% at 0.1, 3% at 1e-3, 47% at 1e-6); and the derivative of its face
    normals (hence of every vertex gradient through shading) is infinite
    for faces whose edge cross product is under 1.4e-13 scene units²
    (``dr.normalize`` cubes 1 / |v|, past float32's range), which is why the
    ball is coarse: at ``scale=1e-6`` its faces have 6e-13.
    """
    T = mi.ScalarTransform4f
    s = float(scale)
    d = {"type": "scene",
         "integrator": {"type": "pathgrad", "max_depth": max_depth},
         "sensor": {"type": "perspective", "fov": 40, "near_clip": 1e-2 * s, "far_clip": 1e4 * s,
                    "to_world": T().look_at(origin=[0, 1.6 * s, 3 * s], target=[0, 0.5 * s, 0],
                                            up=[0, 1, 0]),
                    "film": {"type": "hdrfilm", "width": res, "height": res,
                             "rfilter": {"type": "box"}, "pixel_format": "rgb"},
                    "sampler": {"type": "independent"}},
         "floor": shapes.grid(4, 6.0 * s, name="floor", smooth=False, bsdf=diffuse(0.7)),
         "ball": shapes.icosphere(0, 0.8 * s, center=(0.2 * s, 0.9 * s, 0.0), name="ball",
                                  bsdf=diffuse(0.6, 0.4, 0.3),
                                  emitter={"type": "area", "radiance": {"type": "rgb",
                                                                        "value": [3, 2, 1]}}
                                  if emitting else None),
         "lamp": {"type": "point", "position": [1.2 * s, 2.2 * s, 0.8 * s],
                  "intensity": {"type": "rgb", "value": 6 * s * s}}}
    import numpy as np
    lv = np.array([[-1.2, 2.5, -0.1], [-0.4, 2.5, -0.1], [-0.4, 2.5, 0.7], [-1.2, 2.5, 0.7]])
    d["light"] = shapes.mesh_from_arrays("light", lv * s, np.array([[0, 1, 2], [0, 2, 3]]),
                                         smooth=False, emitter={"type": "area", "radiance": {
                                             "type": "rgb", "value": 15}})
    if emitting:
        d["sky"] = {"type": "constant", "radiance": {"type": "rgb", "value": 0.5}}
    return load_scene(d)


def camera_scene(sensor: str = "perspective", *, res: int = 24, max_depth: int = 2,
                 analytic: str | None = None, smooth: bool = True):
    """A scene for camera gradients: a floor (y = 0), a flat-shaded box
    (creases) and an icosphere (silhouettes; smooth-shaded unless
    ``smooth=False``, so it has a shading terminator), lit by a square mesh
    area light that makes both cast shadows, seen from above at an angle.

    ``sensor``: ``'perspective'`` (key ``sensor.to_world``, ``sensor.x_fov``)
    or ``'orthographic'`` (its ``to_world`` scales camera space to a 2.4 x
    2.4 view). ``analytic``: also place one of Mitsuba's analytic shapes
    (``'sphere'``, ``'disk'`` or ``'rectangle'``, key ``analytic.to_world``)
    over the floor, casting a shadow too."""
    import numpy as np
    T = mi.ScalarTransform4f
    view = T().look_at(origin=[1.6, 2.6, 2.4], target=[0, 0.3, 0], up=[0, 1, 0])
    if sensor == "perspective":
        cam = {"type": "perspective", "fov": 45, "to_world": view}
    elif sensor == "orthographic":
        cam = {"type": "orthographic", "to_world": view @ T().scale([1.2, 1.2, 1])}
    else:
        raise ValueError(f"sensor must be 'perspective' or 'orthographic', got {sensor!r}")
    cam["film"] = {"type": "hdrfilm", "width": res, "height": res, "rfilter": {"type": "box"},
                   "pixel_format": "rgb"}
    cam["sampler"] = {"type": "independent"}
    lv = np.array([[-0.3, 2.5, -0.3], [0.3, 2.5, -0.3], [0.3, 2.5, 0.3], [-0.3, 2.5, 0.3]])
    d = {"type": "scene",
         "integrator": {"type": "pathgrad", "max_depth": max_depth},
         "sensor": cam,
         "floor": shapes.grid(4, 6.0, name="floor", smooth=False, bsdf=diffuse(0.7)),
         "box": {"type": "cube", "bsdf": diffuse(0.3, 0.5, 0.8),
                 "to_world": T().translate([-0.45, 0.25, 0.1]).rotate([0, 1, 0], 30).scale(0.25)},
         "ball": shapes.icosphere(2, 0.3, name="ball", center=(0.35, 0.5, -0.1), smooth=smooth,
                                  bsdf=diffuse(0.8, 0.4, 0.3)),
         "light": shapes.mesh_from_arrays(
             "light", lv, np.array([[0, 1, 2], [0, 2, 3]]), smooth=False,
             emitter={"type": "area", "radiance": {"type": "rgb", "value": 15}}),
         "sky": {"type": "constant", "radiance": {"type": "rgb", "value": 0.2}}}
    if analytic is not None:
        bsdf = diffuse(0.5, 0.8, 0.4)
        place = T().translate([0.3, 0.9, 0.45])
        if analytic == "sphere":
            d["analytic"] = {"type": "sphere", "to_world": place @ T().scale(0.22), "bsdf": bsdf}
        elif analytic in ("disk", "rectangle"):
            tilt = place @ T().rotate([1, 0, 0], -70) @ T().scale(0.25)
            d["analytic"] = {"type": analytic, "to_world": tilt, "bsdf": bsdf}
        else:
            raise ValueError(f"analytic must be 'sphere', 'disk' or 'rectangle', got {analytic!r}")
    return load_scene(d)


def _quad(name, corners, **kw):
    """A one-sided rectangle mesh from 4 corners (counter-clockwise seen from its front)."""
    import numpy as np
    return shapes.mesh_from_arrays(name, np.array(corners, float), np.array([[0, 1, 2], [0, 2, 3]]),
                                   smooth=False, **kw)


def _delta_light(kind: str, position, target, intensity: float) -> dict:
    """A point light at ``position``, or a spot light there aimed at
    ``target`` (30° cutoff), or a directional light shining from
    ``position`` towards ``target`` with the irradiance the point light
    gives at ``target``."""
    import numpy as np
    T = mi.ScalarTransform4f
    if kind == "point":
        return {"type": "point", "position": list(position),
                "intensity": {"type": "rgb", "value": intensity}}
    if kind == "spot":
        return {"type": "spot", "cutoff_angle": 30.0, "beam_width": 20.0,
                "to_world": T().look_at(origin=list(position), target=list(target), up=[0, 1, 0]),
                "intensity": {"type": "rgb", "value": intensity}}
    if kind == "directional":
        r2 = float(np.sum((np.array(position) - np.array(target)) ** 2))
        return {"type": "directional", "irradiance": {"type": "rgb", "value": intensity / r2},
                "to_world": T().look_at(origin=list(position), target=list(target), up=[0, 1, 0])}
    raise ValueError(f"light must be 'point', 'spot' or 'directional', got {kind!r}")


def indirect_scene(kind: str = "bounce", *, res: int = 32, max_depth: int | None = None,
                   smooth_occluder: bool = False, light: str | None = None):
    """Scenes where a moving occluder (flat icosphere, key ``occ``) is seen
    only *after a bounce*: its effect on the image is a discontinuity seen
    from a path vertex, not from the camera or from the first vertex towards
    a light.

    ``kind``:

    - ``'bounce'``: a rectangle light 2 units over the floor faces *up*, at
      a diffuse ceiling; the floor gets only the light the ceiling reflects,
      and the occluder between them casts a soft indirect shadow on the
      floor patch the camera sees (max_depth 3).
      ``smooth_occluder``: a smooth-shaded UV sphere (12 x 24) instead of
      the flat level-1 icosphere.
    - ``'glossy'``: a rough conductor floor (GGX, α = 0.15) reflects the
      lit occluder, which the camera does not see directly, over a black
      background (max_depth 3).
    - ``'box'``: the occluder inside a closed diffuse room lit by a ceiling
      light, seen from inside (max_depth 4): every term at once. With
      ``light='point'``, a point light at the panel's place instead (its
      hard shadows seen directly, after bounces, and the occluder seen from
      path vertices).
    - ``'glossy_point'``: a point light casts the occluder's hard shadow on
      a diffuse wall that the camera sees only in a rough conductor floor
      (GGX, α = 0.2), over a black background (max_depth 3); the occluder
      is out of view, directly and in the floor. ``light``: ``'point'``
      (key ``light.position``), ``'spot'`` (aimed at the occluder, key
      ``light.to_world``) or ``'directional'`` (along the same line, key
      ``light.to_world``). ``smooth_occluder``: a smooth-shaded UV sphere
      (12 x 24) instead of the flat level-1 icosphere.
    """
    T = mi.ScalarTransform4f
    film = {"type": "hdrfilm", "width": res, "height": res, "rfilter": {"type": "box"},
            "pixel_format": "rgb"}
    d = {"type": "scene"}
    if kind == "bounce":
        depth = 3
        d["floor"] = shapes.grid(4, 8.0, name="floor", smooth=False, bsdf=diffuse(0.8))
        d["ceiling"] = _quad("ceiling", [[-3, 3, -3], [3, 3, -3], [3, 3, 3], [-3, 3, 3]],
                             bsdf=diffuse(0.8))
        d["light"] = _quad("light", [[-0.4, 2, -0.4], [-0.4, 2, 0.4], [0.4, 2, 0.4], [0.4, 2, -0.4]],
                           bsdf=diffuse(0.0),
                           emitter={"type": "area", "radiance": {"type": "rgb", "value": 40}})
        if smooth_occluder:
            d["occ"] = shapes.uv_sphere(12, 24, 0.4, center=(1.1, 1.2, 0.0), name="occ",
                                        smooth=True, bsdf=diffuse(0.5))
        else:
            d["occ"] = shapes.icosphere(1, 0.4, name="occ", center=(1.1, 1.2, 0.0), smooth=False,
                                        bsdf=diffuse(0.5))
        eye, target, up, fov = [1.8, 0.7, 0.01], [1.8, 0, 0], [0, 0, -1], 70
    elif kind == "glossy":
        depth = 3
        d["floor"] = shapes.grid(4, 8.0, name="floor", smooth=False, bsdf={
            "type": "roughconductor", "distribution": "ggx", "alpha": 0.15})
        d["occ"] = shapes.icosphere(1, 0.35, name="occ", center=(0.0, 0.5, -1.6), smooth=False,
                                    bsdf=diffuse(0.7, 0.5, 0.3))
        d["light"] = _quad("light", [[-0.5, 3, 0.5], [-0.5, 3, -0.5], [0.5, 3, -0.5], [0.5, 3, 0.5]],
                           emitter={"type": "area", "radiance": {"type": "rgb", "value": 30}})
        eye, target, up, fov = [0, 0.6, 0.6], [0, 0.03, -0.22], [0, 1, 0], 40
    elif kind == "box":
        depth = 4
        s = 1.0
        walls = {"floor": [[-s, 0, -s], [-s, 0, s], [s, 0, s], [s, 0, -s]],
                 "ceiling": [[-s, 2, -s], [s, 2, -s], [s, 2, s], [-s, 2, s]],
                 "back": [[-s, 0, -s], [s, 0, -s], [s, 2, -s], [-s, 2, -s]],
                 "front": [[-s, 0, s], [-s, 2, s], [s, 2, s], [s, 0, s]],
                 "left": [[-s, 0, -s], [-s, 2, -s], [-s, 2, s], [-s, 0, s]],
                 "right": [[s, 0, -s], [s, 0, s], [s, 2, s], [s, 2, -s]]}
        colours = {"left": diffuse(0.8, 0.2, 0.2), "right": diffuse(0.2, 0.8, 0.2)}
        for name, c in walls.items():
            d[name] = _quad(name, c, bsdf=colours.get(name, diffuse(0.8)))
        # a panel under the ceiling that shines up: every surface in view is
        # lit only by light the ceiling (and the rest) reflected; the
        # occluder, over the camera and out of view, casts an indirect shadow
        if light is None:
            d["light"] = _quad("light", [[-0.3, 1.5, -0.3], [-0.3, 1.5, 0.3], [0.3, 1.5, 0.3],
                                         [0.3, 1.5, -0.3]], bsdf=diffuse(0.0),
                               emitter={"type": "area", "radiance": {"type": "rgb", "value": 30}})
        else:
            d["light"] = _delta_light(light, [0.0, 1.5, 0.0], [0.0, 1.1, 0.55], 3.0)
        d["occ"] = shapes.icosphere(1, 0.2, name="occ", center=(0.0, 1.1, 0.55), smooth=False,
                                    bsdf=diffuse(0.6))
        eye, target, up, fov = [0, 0.8, 0.9], [0, 0, -0.3], [0, 1, 0], 75
    elif kind == "glossy_point":
        depth = 3
        d["floor"] = shapes.grid(4, 8.0, name="floor", smooth=False, bsdf={
            "type": "roughconductor", "distribution": "ggx", "alpha": 0.2})
        d["wall"] = _quad("wall", [[-3, 0.45, -2], [3, 0.45, -2], [3, 3, -2], [-3, 3, -2]],
                          bsdf=diffuse(0.8))
        if smooth_occluder:
            d["occ"] = shapes.uv_sphere(12, 24, 0.2, center=(0.0, 1.4, 0.1), name="occ",
                                        smooth=True, bsdf=diffuse(0.5))
        else:
            d["occ"] = shapes.icosphere(1, 0.2, name="occ", center=(0.0, 1.4, 0.1),
                                        smooth=False, bsdf=diffuse(0.5))
        d["light"] = _delta_light(light or "point", [0.0, 1.6, 1.5], [0.0, 1.4, 0.1], 20.0)
        eye, target, up, fov = [0, 0.5, 0.5], [0, 0, -0.8], [0, 1, 0], 35
    else:
        raise ValueError(f"kind must be 'bounce', 'glossy', 'box' or 'glossy_point', got {kind!r}")
    d["integrator"] = {"type": "pathgrad", "max_depth": depth if max_depth is None else max_depth}
    d["sensor"] = {"type": "perspective", "fov": fov, "film": film,
                   "to_world": T().look_at(origin=eye, target=target, up=up),
                   "sampler": {"type": "independent"}}
    return load_scene(d)


def view_directions(n: int) -> np.ndarray:
    """``n`` unit directions spread over the sphere (a Fibonacci lattice,
    |y| <= 0.85 so no view looks straight down), shape (n, 3)."""
    k = np.arange(n) + 0.5
    y = 0.85 * (1 - 2 * k / n)
    phi = k * np.pi * (3 - 5 ** 0.5)
    r = np.sqrt(1 - y ** 2)
    return np.stack([r * np.cos(phi), y, r * np.sin(phi)], 1)


def sky(h: int = 32, w: int = 64) -> np.ndarray:
    """A lat-long sky (h, w, 3), bright overhead, dark below the horizon, with
    a warm glow to one side: smooth, so it is cheap to sample, yet it shades
    every surface orientation differently."""
    v, u = (np.mgrid[0:h, 0:w] + 0.5) / np.array([h, w])[:, None, None]
    up = np.cos(np.pi * v)                                   # +1 at the zenith
    glow = np.exp(-((u - 0.3) ** 2) / 0.02) * np.clip(up + 0.3, 0, 1)
    base = np.clip(0.15 + 0.85 * up, 0.04, None)
    rgb = base[..., None] * np.array([0.75, 0.85, 1.0]) \
        + 1.2 * glow[..., None] * np.array([1.0, 0.7, 0.4])
    return rgb.astype(np.float32)


def multiview_scene(vertices: np.ndarray, faces: np.ndarray, *, views: int = 24, res: int = 32,
                    albedo=(0.8, 0.6, 0.4), distance: float = 3.4, fov: float = 38.0,
                    max_depth: int = 2, smooth: bool = False,
                    directions: np.ndarray | None = None) -> mi.Scene:
    """A mesh (key ``shape``, diffuse BSDF with RGB ``albedo``: key
    ``shape.bsdf.reflectance.value``) under the :func:`sky`, seen by
    ``views`` perspective sensors (``res`` x ``res``, box filter) at
    ``distance`` from the origin in the :func:`view_directions`, looking at
    it (``directions``: (n, 3) unit vectors instead, e.g. a turntable). A
    module-level function of plain arguments, so that Ray workers can build
    the scene themselves (``functools.partial(multiview_scene, v, f)``)."""
    T = mi.ScalarTransform4f
    d = {"type": "scene",
         "integrator": {"type": "pathgrad", "max_depth": int(max_depth)},
         "sky": {"type": "envmap", "bitmap": mi.Bitmap(sky())},
         "shape": shapes.mesh_from_arrays("shape", vertices, faces, smooth=smooth,
                                          bsdf=diffuse(*albedo))}
    dirs = view_directions(views) if directions is None else np.asarray(directions, float)
    for i, w in enumerate(dirs):
        d[f"view{i:02d}"] = {
            "type": "perspective", "fov": fov,
            "to_world": T().look_at(origin=(distance * w).tolist(), target=[0, 0, 0],
                                    up=[0, 1, 0]),
            "film": {"type": "hdrfilm", "width": res, "height": res,
                     "rfilter": {"type": "box"}, "pixel_format": "rgb"},
            "sampler": {"type": "independent"}}
    return load_scene(d)
