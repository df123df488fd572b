"""Multi-view shape reconstruction: deform a sphere into a target mesh.

The target is a knobbly, partly concave blob (four lobes and a dent). It is
rendered from several views around it under a soft environment and a
ceiling area light; the optimiser then moves every vertex of a sphere mesh so
that its renders match. Silhouettes and self-shadows only move with the
boundary term, so this is the example where visibility gradients matter
most. Vertex positions are updated in the Laplacian parametrisation of
Nicolet et al., "Large steps in inverse rendering of geometry" (2021),
u = (I + λL) x with a sparse Cholesky solve (cholespy) and uniform Adam;
``--remesh`` re-triangulates the surface between stages with gpytoolbox's
isotropic remesher (optional: pip install 'pathgrad[remesh]'), else each
stage subdivides every triangle into four.

    python examples/shape_reconstruction.py            # 12 views, 64 px, 2 stages
    python examples/shape_reconstruction.py --fast     # what the tests run (8 views)

Writes to --out (default out/shape_reconstruction):
  comparison.png     target, initial and final renders of four of the views
  loss.png           image loss and mean distance to the target surface per step
  mesh_final.ply     the recovered mesh (scene units), mesh_stage<k>.ply after
                     each stage, mesh_target.ply the truth
  results.json       errors, vertex counts and timings
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
from pathgrad import scenes, shapes  # noqa: E402
from pathgrad.largesteps import LargeSteps  # noqa: E402

KEY = "shape.vertex_positions"


LOBES = np.array([[1, 1, 1], [1, -1, -1], [-1, 1, -1], [-1, -1, 1]], float) / 3 ** 0.5
DENT = np.array([0.3, 0.2, 0.93]) / np.linalg.norm([0.3, 0.2, 0.93])


def target_radius(d: np.ndarray) -> np.ndarray:
    """The target's distance from the origin along unit directions ``d`` (N, 3):
    a sphere of radius 0.55 with four Gaussian lobes in tetrahedral directions
    and one dent. The target is star-shaped, so this describes it exactly."""
    r = 0.55 + 0.32 * np.exp(-np.sum((d[:, None, :] - LOBES[None]) ** 2, -1) / 0.18).sum(1)
    return r - 0.18 * np.exp(-np.sum((d - DENT) ** 2, -1) / 0.08)


def target_mesh(level: int = 4) -> tuple[np.ndarray, np.ndarray]:
    """The target blob as an icosphere mesh (V = 10·4^level + 2 vertices)."""
    v, f = shapes.icosphere_arrays(level)
    return v * target_radius(v)[:, None], f


def shape_error(v: np.ndarray, f: np.ndarray) -> float:
    """Mean radial distance (scene units) from points spread uniformly over the
    mesh (fixed seed) to the target surface."""
    p = surface_points(v, f, 4000, seed=7)
    r = np.linalg.norm(p, axis=1)
    return float(np.mean(np.abs(r - target_radius(p / r[:, None]))))


def subdivide(v: np.ndarray, f: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Split every triangle into four at its edge midpoints (no smoothing)."""
    e = np.sort(np.concatenate([f[:, [0, 1]], f[:, [1, 2]], f[:, [2, 0]]]), axis=1)
    uniq, inv = np.unique(e, axis=0, return_inverse=True)
    mid = len(v) + inv.reshape(3, -1).T                     # (F, 3): ab, bc, ca
    v2 = np.concatenate([v, 0.5 * (v[uniq[:, 0]] + v[uniq[:, 1]])])
    a, b, c = f.T
    ab, bc, ca = mid.T
    f2 = np.concatenate([np.stack(t, 1) for t in
                         ((a, ab, ca), (b, bc, ab), (c, ca, bc), (ab, bc, ca))])
    return v2, f2


def remesh(v: np.ndarray, f: np.ndarray, use_gpytoolbox: bool):
    if not use_gpytoolbox:
        return subdivide(v, f)
    try:
        import gpytoolbox
    except ImportError:
        raise SystemExit("--remesh needs gpytoolbox: pip install 'pathgrad[remesh]' "
                         "(or: pip install gpytoolbox), or run without --remesh")
    edge = np.linalg.norm(v[f[:, 0]] - v[f[:, 1]], axis=1).mean()
    v2, f2 = gpytoolbox.remesh_botsch(v.astype(np.float64), f.astype(np.int32),
                                      i=5, h=0.5 * edge, project=True)
    return np.asarray(v2), np.asarray(f2)


def build_scene(views: int, res: int, mesh: tuple[np.ndarray, np.ndarray]) -> mi.Scene:
    """The mesh (flat-shaded, albedo (0.8, 0.6, 0.4)) under the sky, seen from
    ``views`` views on a Fibonacci sphere (``pathgrad.scenes.multiview_scene``)."""
    return scenes.multiview_scene(*mesh, views=views, res=res, albedo=(0.8, 0.6, 0.4))


def surface_points(v, f, n=4000, seed=0) -> np.ndarray:
    """Points spread uniformly (by area) over a triangle mesh."""
    rng = np.random.default_rng(seed)
    a, b, c = v[f[:, 0]], v[f[:, 1]], v[f[:, 2]]
    area = 0.5 * np.linalg.norm(np.cross(b - a, c - a), axis=1)
    t = rng.choice(len(f), n, p=area / area.sum())
    u, w = rng.random(n), rng.random(n)
    flip = u + w > 1
    u[flip], w[flip] = 1 - u[flip], 1 - w[flip]
    return a[t] + u[:, None] * (b[t] - a[t]) + w[:, None] * (c[t] - a[t])


def main(argv=None) -> dict:
    def extra(ap):
        ap.add_argument("--views", type=int, help="number of views (default 12, --fast 8)")
        ap.add_argument("--stages", type=int,
                        help="optimisation stages, remeshed in between (default 2, --fast 1)")
        ap.add_argument("--level", type=int, default=2,
                        help="subdivision level of the starting icosphere (default 2 = 162 vertices)")
        ap.add_argument("--lam", type=float, default=4.0,
                        help="smoothing strength λ of the parametrisation (default 4)")
        ap.add_argument("--remesh", action="store_true",
                        help="remesh between stages with gpytoolbox (default: subdivide)")
        ap.add_argument("--no-shadow", action="store_true",
                        help="leave the self-shadow boundary term out (faster, biased)")

    args = _common.parse_args(
        __doc__, argv,
        full=dict(iters=200, spp=4, res=64, lr=0.1),
        fast=dict(iters=60, spp=4, res=32, lr=0.1), extra=extra)
    args.views = args.views or (8 if args.fast else 12)
    args.stages = args.stages or (1 if args.fast else 2)

    tv, tf = target_mesh()
    scene = build_scene(args.views, args.res, (tv, tf))
    targets = [pathgrad.render(scene, spp=64, seed=10**6 + i, sensor=i) for i in range(args.views)]

    v, f = shapes.icosphere_arrays(args.level)
    v = v * 0.6
    error0 = shape_error(v, f)
    run = _common.Run("shape_reconstruction", args, total=args.iters)
    shown = list(range(0, args.views, max(1, args.views // 4)))[:4]
    initial = None
    stage_iters = [args.iters // args.stages + (s < args.iters % args.stages)
                   for s in range(args.stages)]
    stage_log = []
    it = 0
    for stage, n_it in enumerate(stage_iters):
        if stage > 0:
            v, f = remesh(v, f, args.remesh)
        # a fresh scene for the new connectivity
        scene = build_scene(args.views, args.res, (v, f))
        params = pathgrad.parameters(scene, KEY)
        if initial is None:
            initial = [pathgrad.render(scene, spp=64, seed=10**6 + i, sensor=i) for i in shown]
        ls = LargeSteps(v, f, lam=args.lam)
        opt = mi.ad.Adam(lr=args.lr, uniform=True)
        opt["u"] = ls.to_differential(mi.Float(v.astype(np.float32).ravel()))
        x = ls.from_differential(opt["u"])      # positions, attached to u
        for _ in range(n_it):   # (a decaying learning rate measured slower here)
            params[KEY] = x
            params.update()
            # Sum the views' losses and differentiate once: each render is one
            # node of the AD graph (pathgrad replays the paths in its backward
            # pass), so holding all views costs little memory.
            loss = 0
            for i in range(args.views):
                img = pathgrad.render(scene, params, spp=args.spp, sensor=i,
                                      seed=args.seed * 100003 + it * 131 + i,
                                      shadow=not args.no_shadow)
                loss += dr.mean(dr.square(img - targets[i]), axis=None) / args.views
            dr.backward(loss)
            opt.step()
            x = ls.from_differential(opt["u"])  # one solve per step: logged and used next
            v = np.array(dr.detach(x)).reshape(-1, 3)
            run.log(loss, shape_error(v, f))
            it += 1
        params[KEY] = mi.Float(v.astype(np.float32).ravel())
        params.update()
        shapes.write_ply(run.path(f"mesh_stage{stage}.ply"), v, f)
        stage_log.append({"stage": stage, "iters": n_it, "vertices": len(v),
                          "shape_error": run.param_error[-1] if run.param_error else None})

    final = [pathgrad.render(scene, spp=64, seed=10**6 + i, sensor=i) for i in shown]
    shapes.write_ply(run.path("mesh_final.ply"), v, f)
    shapes.write_ply(run.path("mesh_target.ply"), tv, tf)
    return run.finish(
        [[targets[i], initial[k], final[k]] for k, i in enumerate(shown)],
        row_titles=[f"view {i}" for i in shown],
        results={"views": args.views, "stages": stage_log,
                 "shape_error_start": error0},
        param_label="mean distance to the target surface (m)")


if __name__ == "__main__":
    main()
