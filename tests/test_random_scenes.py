"""Randomised scenes: whatever the mesh, shading, material, light, camera and
scale, every image and every gradient (reverse and forward, interior and
boundary terms) is finite.

Each case draws its scene from its own seed (so a failure is reproducible
with that seed): a moving mesh (icosphere, UV sphere or bumpy sphere, coarse
or fine, smooth or flat) over a floor, one of Mitsuba's BSDFs, one to two
lights among point, spot, area (a mesh rectangle), constant and directional,
a perspective camera at a random distance, angle and fov, and the whole scene
scaled by 10^k.
"""
import drjit as dr
import mitsuba as mi
import numpy as np
import pytest

import pathgrad
from pathgrad import shapes

KEY = "obj.vertex_positions"

BSDFS = [
    {"type": "diffuse", "reflectance": {"type": "rgb", "value": [0.6, 0.4, 0.3]}},
    {"type": "roughconductor", "alpha": 0.3},
    {"type": "roughplastic", "alpha": 0.2},
    {"type": "plastic"},
    {"type": "roughdielectric", "alpha": 0.3},
    {"type": "conductor"},
]


def _mesh(rng, scale):
    kind = rng.integers(3)
    if kind == 0:
        v, f = shapes.icosphere_arrays(int(rng.integers(1, 4)))
    else:
        v, f = shapes.uv_sphere_arrays(int(rng.integers(4, 16)), int(rng.integers(6, 24)))
    if kind == 2:   # bumpy: a sculpted-looking radial displacement
        v = v * (1 + 0.15 * np.sin(5 * v[:, :1]) * np.cos(4 * v[:, 1:2]))
    v = v * 0.6 + [0.0, 0.7, 0.0]
    return shapes.mesh_from_arrays("obj", v * scale, f, smooth=bool(rng.integers(2)),
                                   bsdf=BSDFS[rng.integers(len(BSDFS))])


def _lights(rng, scale):
    T = mi.ScalarTransform4f
    out = {}
    for i in range(int(rng.integers(1, 3))):
        kind = rng.integers(5)
        if kind == 3 and any(v.get("type") == "constant" for v in out.values()):
            kind = 0   # Mitsuba allows one environment emitter per scene
        p = (rng.uniform(-2, 2), rng.uniform(2, 3.5), rng.uniform(-2, 2))
        p = [c * scale for c in p]
        if kind == 0:
            out[f"l{i}"] = {"type": "point", "position": p,
                            "intensity": {"type": "rgb", "value": 10 * scale ** 2}}
        elif kind == 1:
            out[f"l{i}"] = {"type": "spot", "cutoff_angle": 40.0, "intensity": 10 * scale ** 2,
                            "to_world": T().look_at(origin=p, target=[0, 0, 0], up=[0, 0, 1])}
        elif kind == 2:
            out[f"l{i}"] = {"type": "rectangle", "to_world": T().translate(p).rotate(
                [1, 0, 0], 90).scale(0.4 * scale),
                "emitter": {"type": "area", "radiance": {"type": "rgb", "value": 8.0}}}
        elif kind == 3:
            out[f"l{i}"] = {"type": "constant", "radiance": {"type": "rgb", "value": 0.5}}
        else:
            out[f"l{i}"] = {"type": "directional", "direction": [-p[0], -p[1], -p[2]],
                            "irradiance": {"type": "rgb", "value": 2.0}}
    return out


def random_scene(seed: int, res: int = 12):
    """The scene of one case (see the module docstring) and its scale."""
    rng = np.random.default_rng(seed)
    scale = float(10.0 ** rng.choice([-3, -1, 0, 0, 1, 3]))
    T = mi.ScalarTransform4f
    dist = rng.uniform(2.5, 6.0)
    az, el = rng.uniform(0, 2 * np.pi), rng.uniform(0.1, 1.2)
    origin = dist * np.array([np.cos(el) * np.sin(az), np.sin(el), np.cos(el) * np.cos(az)])
    d = {"type": "scene",
         "integrator": {"type": "pathgrad", "max_depth": int(rng.integers(2, 5))},
         "sensor": {"type": "perspective", "fov": float(rng.uniform(25, 70)),
                    # the clip planes scale with the scene (Mitsuba's near_clip
                    # default, 0.01, is inside a scene of 1e-3 units)
                    "near_clip": 1e-2 * scale, "far_clip": 1e4 * scale,
                    "to_world": T().look_at(origin=list(origin * scale),
                                            target=[0, 0.5 * scale, 0], up=[0, 1, 0]),
                    "film": {"type": "hdrfilm", "width": res, "height": res,
                             "rfilter": {"type": ["box", "gaussian"][rng.integers(2)]},
                             "pixel_format": "rgb"},
                    "sampler": {"type": "independent"}},
         "floor": shapes.grid(4, 6.0 * scale, name="floor", smooth=False,
                              bsdf={"type": "diffuse"}),
         "obj": _mesh(rng, scale)}
    d.update(_lights(rng, scale))
    return pathgrad.load_scene(d), scale


def check_finite_case(seed: int):
    scene, scale = random_scene(seed)
    params = pathgrad.parameters(scene, KEY)
    img = pathgrad.render(scene, params, spp=4, seed=seed)
    dr.backward(dr.mean(img, axis=None))
    image, grad = np.array(img), np.array(dr.grad(params[KEY]))
    t = {KEY: dr.full(mi.Float, scale, dr.width(params[KEY]))}
    terms = pathgrad.gradient_images(scene, params, t, spp=4, seed=seed)
    print(f"seed {seed}: scale {scale:g}, |image| {np.abs(image).max():.3g}, "
          f"|grad| {np.abs(grad).max():.3g}, |boundary image| "
          f"{np.abs(np.array(terms['boundary'])).max():.3g}")
    assert np.isfinite(image).all(), f"seed {seed}: image"
    assert np.isfinite(grad).all(), f"seed {seed}: {np.sum(~np.isfinite(grad))} vertex gradients"
    for k, v in terms.items():
        assert np.isfinite(np.array(v)).all(), f"seed {seed}: {k} gradient image"
    assert np.abs(image).max() > 0, f"seed {seed}: black image proves nothing"


# two cases in the default suite (each new combination of plugins compiles
# its own kernels: 30-80 s a case cold on 2 cores); the rest with -m slow
DEFAULT_SEEDS = (3, 5)


@pytest.mark.parametrize("seed", DEFAULT_SEEDS)
def test_random_scene_is_finite(seed):
    check_finite_case(seed)


@pytest.mark.slow
@pytest.mark.parametrize("seed", [s for s in range(40) if s not in DEFAULT_SEEDS])
def test_random_scene_is_finite_many(seed):
    check_finite_case(seed)
