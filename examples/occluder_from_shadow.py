"""Find a hidden occluder from its shadow.

An area light to the left of the scene shines over an occluder onto a floor.
The camera sees only the floor and the occluder's soft shadow, never the
occluder or the light. Everything the optimiser learns about the occluder comes
through the shadow's edges: pathgrad's boundary term for shadows (edge
sampling of the occluder's silhouette as seen from points on the floor).

Two modes:
  --mode position   recover the occluder's position (3 numbers: a rigid
                    translation of its mesh) from a start 0.5 m away;
  --mode vertices   recover its shape: the true occluder is an elongated,
                    bent blob; start from a sphere and move every vertex, in
                    the Laplacian parametrisation of "Large steps in inverse
                    rendering of geometry" (pathgrad.largesteps).

    python examples/occluder_from_shadow.py                  # position, 96 px, ~50 s
    python examples/occluder_from_shadow.py --mode vertices    # 64 px, ~40 s
    python examples/occluder_from_shadow.py --fast [--mode vertices]   # what the tests run

Writes to --out (default out/occluder_from_shadow_<mode>):
  comparison.png   what the camera sees: target, initial and final shadows,
                   and a view from above (never used by the optimiser) that
                   shows the occluder itself
  loss.png         image loss and parameter error per step
  occluder.ply     the recovered occluder mesh (scene units, metres)
  results.json     recovered and true values, errors, timings
The parameter error is the distance between the true and recovered centres
(position mode), or the Chamfer distance between the true and recovered
shadow footprints (the vertices projected from the light's centre onto the
floor; vertices mode): the part of the shape a single shadow determines.
"""
from __future__ import annotations

import os
import sys

import drjit as dr
import mitsuba as mi
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _common  # noqa: E402

import pathgrad  # noqa: E402
from pathgrad import shapes  # noqa: E402
from pathgrad.scenes import diffuse  # noqa: E402

LIGHT_CENTER = np.array([-2.0, 3.2, 0.0])
TRUE_CENTER = np.array([0.0, 1.1, 0.0])
START_OFFSET = np.array([-0.3, 0.2, 0.35])       # |offset| = 0.5 m
KEY = "occluder.vertex_positions"


def true_shape(level: int) -> tuple[np.ndarray, np.ndarray]:
    """An elongated, bent blob (about 1.0 x 0.5 x 0.6 m) around TRUE_CENTER."""
    v, f = shapes.icosphere_arrays(level)
    p = v * np.array([0.55, 0.28, 0.3])
    p[:, 1] += 0.25 * (p[:, 0] / 0.55) ** 2 - 0.1          # bend up at both ends
    p[:, 2] += 0.15 * np.sin(2.5 * p[:, 0])                # and sideways
    return p + TRUE_CENTER, f


def sphere_shape(level: int, center) -> tuple[np.ndarray, np.ndarray]:
    v, f = shapes.icosphere_arrays(level)
    return v * 0.4 + center, f


def build_scene(res: int, occluder: tuple[np.ndarray, np.ndarray]) -> mi.Scene:
    T = mi.ScalarTransform4f
    s = 0.3  # light half-size
    lv = LIGHT_CENTER + np.array([[-s, 0, -s], [s, 0, -s], [s, 0, s], [-s, 0, s]])
    film = {"type": "hdrfilm", "width": res, "height": res, "rfilter": {"type": "box"},
            "pixel_format": "rgb"}
    return pathgrad.load_scene({
        "type": "scene",
        "integrator": {"type": "pathgrad", "max_depth": 2},
        "floor": shapes.grid(8, 10.0, name="floor", smooth=False, bsdf=diffuse(0.75)),
        "occluder": shapes.mesh_from_arrays("occluder", *occluder, smooth=False,
                                            bsdf=diffuse(0.4, 0.5, 0.6)),
        "light": shapes.mesh_from_arrays(
            "light", lv, np.array([[0, 1, 2], [0, 2, 3]]), smooth=False,
            emitter={"type": "area", "radiance": {"type": "rgb", "value": 30.0}}),
        "sky": {"type": "constant", "radiance": {"type": "rgb", "value": 0.15}},
        # the camera: looks down at the shadow, the occluder is out of view
        "camera": {"type": "perspective", "fov": 50,
                   "to_world": T().look_at(origin=[1.3, 2.3, 0.0], target=[1.1, 0, 0],
                                           up=[0, 0, -1]),
                   "film": film, "sampler": {"type": "independent"}},
        # a view from above, only for the pictures
        "overview": {"type": "perspective", "fov": 45,
                     "to_world": T().look_at(origin=[0.6, 6.0, 4.0], target=[0.6, 0.5, 0],
                                             up=[0, 1, 0]),
                     "film": film, "sampler": {"type": "independent"}},
    })


def footprint(v: np.ndarray) -> np.ndarray:
    """Vertices projected from the light's centre onto the floor (y = 0): (V, 2) in x, z."""
    d = v - LIGHT_CENTER
    t = -LIGHT_CENTER[1] / d[:, 1]
    return (LIGHT_CENTER + t[:, None] * d)[:, [0, 2]]


def chamfer(a: np.ndarray, b: np.ndarray) -> float:
    d = np.linalg.norm(a[:, None, :] - b[None, :, :], axis=-1)
    return float(0.5 * (d.min(1).mean() + d.min(0).mean()))


def main(argv=None) -> dict:
    def extra(ap):
        ap.add_argument("--mode", choices=["position", "vertices"], default="position",
                        help="what to recover (default: position)")
        ap.add_argument("--level", type=int,
                        help="icosphere subdivision level of the meshes (vertices mode; "
                             "default 3 = 642 vertices, --fast 2 = 162)")
        ap.add_argument("--lam", type=float, default=30.0,
                        help="smoothing strength λ of the large-steps parametrisation (default 30)")
        ap.add_argument("--no-boundary", action="store_true",
                        help="drop pathgrad's boundary term: the occluder then gets no "
                             "gradient at all (it is hidden), and nothing moves")
        ap.add_argument("--target-spp", type=int, default=1024,
                        help="samples per pixel of the target image (default 1024)")

    def full(a):
        return (dict(iters=200, spp=16, res=64, lr=0.01) if a.mode == "vertices"
                else dict(iters=150, spp=16, res=96, lr=0.03))

    def fast(a):
        return (dict(iters=80, spp=16, res=40, lr=0.015) if a.mode == "vertices"
                else dict(iters=80, spp=16, res=40, lr=0.05))

    args = _common.parse_args(__doc__, argv, full=full, fast=fast, extra=extra)
    vertices_mode = args.mode == "vertices"
    level = 2                                   # the occluder's icosphere subdivision
    if vertices_mode:
        level = args.level if args.level is not None else (2 if args.fast else 3)

    true_v, faces = true_shape(level) if vertices_mode else sphere_shape(level, TRUE_CENTER)
    scene = build_scene(args.res, (true_v, faces))
    target = pathgrad.render(scene, spp=args.target_spp, seed=10**6 + args.seed)
    target_over = pathgrad.render(scene, spp=64, seed=10**6, sensor=1)

    params = pathgrad.parameters(scene, KEY)
    start_v, _ = sphere_shape(level, TRUE_CENTER + START_OFFSET)
    start = mi.Float(start_v.astype(np.float32).ravel())

    if vertices_mode:
        from pathgrad.largesteps import LargeSteps
        ls = LargeSteps(start_v, faces, lam=args.lam)
        opt = mi.ad.Adam(lr=args.lr, uniform=True)
        opt["u"] = ls.to_differential(start)

        def positions():
            return ls.from_differential(opt["u"])
    else:
        opt = mi.ad.Adam(lr=args.lr)
        opt["t"] = mi.Vector3f(0.0)
        base = dr.unravel(mi.Point3f, start)

        def positions():
            return dr.ravel(base + opt["t"])

    def current_v() -> np.ndarray:
        return np.array(dr.detach(params[KEY])).reshape(-1, 3)

    def error() -> float:
        v = current_v()
        if vertices_mode:
            return chamfer(footprint(v), footprint(true_v))
        return float(np.linalg.norm(v.mean(0) - true_v.mean(0)))

    def apply():
        params[KEY] = positions()
        params.update()

    run = _common.Run(f"occluder_from_shadow_{args.mode}", args, total=args.iters)
    apply()
    initial = pathgrad.render(scene, spp=args.target_spp, seed=10**6 + args.seed)
    initial_over = pathgrad.render(scene, spp=64, seed=10**6, sensor=1)
    err0 = error()
    for it in range(args.iters):
        opt.set_learning_rate(_common.learning_rate(args.lr, it, args.iters))
        img = pathgrad.render(scene, params, spp=args.spp, seed=args.seed * 100003 + it,
                              boundary=not args.no_boundary)
        loss = dr.mean(dr.square(img - target), axis=None)
        dr.backward(loss)
        opt.step()
        apply()
        run.log(loss, error())

    final = pathgrad.render(scene, spp=args.target_spp, seed=10**6 + args.seed)
    final_over = pathgrad.render(scene, spp=64, seed=10**6, sensor=1)
    shapes.write_ply(run.path("occluder.ply"), current_v(), faces)
    shapes.write_ply(run.path("occluder_true.ply"), true_v, faces)
    v = current_v()
    return run.finish(
        [[target, initial, final], [target_over, initial_over, final_over]],
        row_titles=["camera (optimised)", "overview (not used)"],
        results={"mode": args.mode, "vertices": len(v), "param_error_start": err0,
                 "true_center": true_v.mean(0), "recovered_center": v.mean(0),
                 "start_center": start_v.mean(0)},
        param_label="centre error (m)" if not vertices_mode else "footprint Chamfer distance (m)")


if __name__ == "__main__":
    main()
