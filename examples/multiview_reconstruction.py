"""Shape and albedo of an object from many views, with pathgrad.MultiViewProblem.

The target is the knobbly blob of ``shape_reconstruction.py`` (four lobes and
a dent) with an orange albedo, rendered from 24 views spread over the sphere
under a smooth sky. The optimisation starts from a grey sphere and recovers
the vertex positions (large-steps parametrisation, Nicolet et al. 2021,
uniform Adam) and the RGB albedo (plain Adam, clamped to [0.02, 0.98]) at
once, rendering a random batch of views per step; the learning rates fall
to a tenth over the second half of the run. ``--workers N`` renders
the views on N Ray actors (``pip install 'pathgrad[distributed]'``) instead
of in this process: the same gradients for the same seeds.

    python examples/multiview_reconstruction.py             # 24 views, 48 px, 240 steps, ~5 min
    python examples/multiview_reconstruction.py --fast      # what the tests run (~30 s)
    python examples/multiview_reconstruction.py --workers 2 # on a local Ray cluster

Writes to --out (default out/multiview_reconstruction):
  comparison.png    target, initial and final renders of four views
  loss.png          image loss and mean distance to the target surface per step
  turntable.gif     the recovered object turning (and turntable.png, its frames)
  mesh_final.ply    the recovered mesh (scene units); mesh_target.ply the truth
  results.json      errors, albedo, seconds per step, settings
"""
from __future__ import annotations

import functools
import os
import sys

import drjit as dr
import mitsuba as mi
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _common  # noqa: E402
from shape_reconstruction import shape_error, target_mesh  # noqa: E402

import pathgrad  # noqa: E402
from pathgrad import scenes, shapes  # noqa: E402
from pathgrad.largesteps import LargeSteps  # noqa: E402

KEY = "shape.vertex_positions"
ALBEDO = "shape.bsdf.reflectance.value"
TRUE_ALBEDO = (0.75, 0.45, 0.25)


def turntable(v, f, albedo, res: int, frames: int) -> list[np.ndarray]:
    """``frames`` renders of the mesh from a circle of views 20 degrees above
    the equator (64 spp), as sRGB arrays."""
    phi = 2 * np.pi * np.arange(frames) / frames
    el = np.radians(20)
    dirs = np.stack([np.cos(el) * np.cos(phi), np.full(frames, np.sin(el)),
                     np.cos(el) * np.sin(phi)], 1)
    scene = scenes.multiview_scene(v, f, views=frames, res=res, albedo=albedo, directions=dirs)
    return [_common.tonemap(pathgrad.render(scene, spp=64, seed=i, sensor=i))
            for i in range(frames)]


def save_turntable(path_gif: str, path_png: str, frames: list[np.ndarray]) -> None:
    import imageio.v2 as imageio
    imgs = [(np.clip(fr, 0, 1) * 255).astype(np.uint8) for fr in frames]
    imageio.mimsave(path_gif, imgs, duration=0.12, loop=0)
    imageio.imwrite(path_png, np.concatenate(imgs, axis=1))


def main(argv=None) -> dict:
    def extra(ap):
        ap.add_argument("--views", type=int, default=24, help="number of views (default 24)")
        ap.add_argument("--batch", type=int,
                        help="views rendered per step (default 8, --fast 6)")
        ap.add_argument("--workers", type=int, default=0,
                        help="Ray actors rendering the views (default 0: this process)")
        ap.add_argument("--level", type=int, default=2,
                        help="subdivision level of the starting icosphere (default 2 = 162 vertices)")
        ap.add_argument("--lam", type=float, default=4.0,
                        help="smoothing strength λ of the large-steps parametrisation (default 4)")
        ap.add_argument("--albedo-lr", type=float, default=0.02,
                        help="Adam learning rate of the albedo (default 0.02)")

    args = _common.parse_args(
        __doc__, argv,
        full=dict(iters=240, spp=4, res=48, lr=0.1),
        fast=dict(iters=40, spp=2, res=20, lr=0.1), extra=extra)
    args.batch = args.batch or (6 if args.fast else 8)
    if args.views < 1 or not 1 <= args.batch <= args.views:
        raise SystemExit(f"--batch must be between 1 and --views ({args.views}), got {args.batch}")

    tv, tf = target_mesh()
    target_scene = scenes.multiview_scene(tv, tf, views=args.views, res=args.res,
                                          albedo=TRUE_ALBEDO)
    targets = [np.array(pathgrad.render(target_scene, spp=64, seed=10**6 + i, sensor=i))
               for i in range(args.views)]

    v, f = shapes.icosphere_arrays(args.level)
    v = 0.6 * v
    error0 = shape_error(v, f)
    # the workers build the scene themselves from this (a picklable partial)
    source = functools.partial(scenes.multiview_scene, v, f, views=args.views, res=args.res,
                               albedo=(0.5, 0.5, 0.5))
    ls = LargeSteps(v, f, lam=args.lam)

    def to_params(x):
        return {KEY: ls.from_differential(x["u"]),
                ALBEDO: mi.Color3f(*(dr.clip(dr.gather(mi.Float, x["albedo"], i), 0.02, 0.98)
                                     for i in range(3)))}

    opt = mi.ad.Adam(lr=args.lr, uniform=True)
    opt["u"] = ls.to_differential(mi.Float(v.astype(np.float32).ravel()))
    opt["albedo"] = mi.Float(0.5, 0.5, 0.5)
    opt.set_learning_rate({"u": args.lr, "albedo": args.albedo_lr})
    run = _common.Run("multiview_reconstruction", args, total=args.iters)
    shown = list(range(0, args.views, max(1, args.views // 4)))[:4]
    initial = [pathgrad.render(source(), spp=64, seed=10**6 + i, sensor=i) for i in shown]

    with pathgrad.MultiViewProblem(source, targets, {"u": opt["u"], "albedo": opt["albedo"]},
                                   to_params, optimizer=opt, spp=args.spp, batch=args.batch,
                                   seed=args.seed, workers=args.workers,
                                   progress=False) as problem:
        for it in range(args.iters):
            # the rates fall to a tenth over the second half (averages out the noise)
            opt.set_learning_rate({"u": _common.learning_rate(args.lr, it, args.iters),
                                   "albedo": _common.learning_rate(args.albedo_lr, it, args.iters)})
            loss = problem.step()
            vk = problem.parameter_values()[KEY].reshape(-1, 3)
            run.log(loss, shape_error(vk, f))
        values = problem.parameter_values()
        final_scene = problem.scene()
        seconds = problem.step_seconds
    v_final = values[KEY].reshape(-1, 3)
    albedo = values[ALBEDO].astype(float)
    final = [pathgrad.render(final_scene, spp=64, seed=10**6 + i, sensor=i) for i in shown]
    shapes.write_ply(run.path("mesh_final.ply"), v_final, f)
    shapes.write_ply(run.path("mesh_target.ply"), tv, tf)
    frames = turntable(v_final, f, tuple(albedo), res=max(args.res, 48), frames=8 if args.fast else 24)
    save_turntable(run.path("turntable.gif"), run.path("turntable.png"), frames)
    return run.finish(
        [[targets[i], initial[k], final[k]] for k, i in enumerate(shown)],
        row_titles=[f"view {i}" for i in shown],
        results={"views": args.views, "batch": args.batch, "workers": args.workers,
                 "vertices": len(v_final), "shape_error_start": error0,
                 "albedo_final": albedo.tolist(), "albedo_true": list(TRUE_ALBEDO),
                 "albedo_error": float(np.abs(albedo - TRUE_ALBEDO).max()),
                 "seconds_per_step_median": float(np.median(seconds[1:] or seconds))},
        param_label="mean distance to the target surface (m)")


if __name__ == "__main__":
    main()
