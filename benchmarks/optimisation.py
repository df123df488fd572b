"""Whole optimisations, pathgrad against Mitsuba's projective integrators.

Runs the loops of three problems with the same scene, targets,
parametrisation, optimiser, step count and seeds, changing only the renderer
that produces the image and its gradient:

- ``shape``: multi-view shape reconstruction (examples/shape_reconstruction.py,
  its --fast settings: 8 views, 32 px, 4 spp, 162 vertices, large steps);
- ``occluder``: the hidden occluder's position from its shadow
  (examples/occluder_from_shadow.py, --fast settings: 40 px, 8 spp);
- ``pose``: the pose of a sculpted, smooth-shaded mesh (a level-6 icosphere,
  40962 vertices, radially displaced by a fixed low-frequency field, diffuse)
  under a constant sky and an area light, from one 64 px view at 16 spp:
  translation (3) and Euler angles (3, degrees) applied to the vertices
  (positions = t + Rz Ry Rx base), started 0.15 units and about 10 degrees
  off, 100 steps of Adam (learning rates 0.01 units and 0.5 degrees), target
  rendered once at 512 spp; errors: translation (units) and rotation
  (degrees, the angle between the recovered and the true orientation).

Methods: ``pathgrad.render``; ``mi.render`` with ``prb_projective`` (Mitsuba
defaults, and with ``sppi=0``, i.e. primary visibility only) and
``direct_projective`` with ``guiding='none'`` (the setting of Mitsuba's
tutorials) for the shape; ``direct_projective`` (defaults) and
``prb_projective`` for the occluder; ``direct_projective`` with
``guiding='none'`` for the pose, and with ``--pose-guided`` also
``prb_projective`` (defaults, guided; about 3x pathgrad's time per step
there, so off by default).
The other methods stop after ``--budget`` times pathgrad's total time.
Reported per method: steps run, median seconds per step, the parameter
error(s) at the end, and the error reached within pathgrad's total time
("equal time"); for the shape and the pose also the benchmark targets: the
ratio of unguided ``direct_projective``'s seconds per step to pathgrad's,
and the final errors of both. Results go to ``--out`` (default
benchmarks/results): optimisation.json, and a plot of error against wall
time, optimisation_<problem>.png.

    python benchmarks/optimisation.py [--problem shape|occluder|pose|all] [--steps N]
        [--pose-guided] [--out DIR]
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time

import drjit as dr
import mitsuba as mi
import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "examples"))
sys.path.insert(0, HERE)

import pathgrad  # noqa: E402
from pathgrad.largesteps import LargeSteps  # noqa: E402
from harness import RESULTS, meta  # noqa: E402


def pathgrad_renderer():
    def render(scene, params, spp, seed, sensor):
        return pathgrad.render(scene, params, spp=spp, seed=seed, sensor=sensor)
    return render


def mitsuba_renderer(props: dict):
    integ = mi.load_dict(props)

    def render(scene, params, spp, seed, sensor):
        # decorrelated seeds for the primal and the differential pass, as pathgrad does
        return mi.render(scene, params, integrator=integ, spp=spp, seed=seed,
                         seed_grad=(seed * 0x9E3779B1 + 12345) & 0xFFFFFFFF, sensor=sensor)
    return render


#: the compared Mitsuba setting of the benchmark targets (Mitsuba's tutorials use it)
UNGUIDED = "direct_projective guiding=none"


def unguided_direct():
    """``direct_projective`` without guiding structures for indirect silhouettes."""
    return mitsuba_renderer({"type": "direct_projective", "guiding": "none"})


def run_loop(render, *, scene, params, key, positions, opt, steps, views, targets, error,
             spp, seed=0, budget=float("inf")):
    """The examples' loop with a given renderer; returns per-step times (N,)
    and errors (N, number of error measures). Stops early once ``budget``
    seconds have passed."""
    times, errors = [], []
    t_start = time.perf_counter()
    for it in range(steps):
        params[key] = positions()
        params.update()
        loss = 0
        for i in range(views):
            img = render(scene, params, spp, seed * 100003 + it * 131 + i, i)
            loss += dr.mean(dr.square(img - targets[i]), axis=None) / views
        dr.backward(loss)
        opt.step()
        dr.eval(*(opt[k] for k in opt.keys()))
        times.append(time.perf_counter() - t_start)
        errors.append(np.atleast_1d(error()))
        if times[-1] > budget:
            break
    return np.array(times), np.array(errors)


def shape_problem(steps):
    import shape_reconstruction as S
    from pathgrad import shapes
    views, res, spp = 8, 32, 4
    tv, tf = S.target_mesh()
    scene = S.build_scene(views, res, (tv, tf))
    targets = [pathgrad.render(scene, spp=64, seed=10**6 + i, sensor=i) for i in range(views)]
    v0, f = shapes.icosphere_arrays(2)
    v0 = v0 * 0.6

    def setup():
        sc = S.build_scene(views, res, (v0, f))
        params = pathgrad.parameters(sc, S.KEY)
        ls = LargeSteps(v0, f, lam=4.0)
        opt = mi.ad.Adam(lr=0.1, uniform=True)
        opt["u"] = ls.to_differential(mi.Float(v0.astype(np.float32).ravel()))

        def positions():
            return ls.from_differential(opt["u"])

        def error():
            v = np.array(dr.detach(params[S.KEY])).reshape(-1, 3)
            return S.shape_error(v, f)
        return dict(scene=sc, params=params, key=S.KEY, positions=positions, opt=opt,
                    steps=steps, views=views, targets=targets, error=error, spp=spp)

    methods = {
        "pathgrad": pathgrad_renderer,
        "prb_projective": lambda: mitsuba_renderer({"type": "prb_projective", "max_depth": 2}),
        "prb_projective sppi=0": lambda: mitsuba_renderer(
            {"type": "prb_projective", "max_depth": 2, "sppi": 0}),
        UNGUIDED: unguided_direct,
    }
    return setup, methods, [("error", "mean distance to the target surface (m)")]


def occluder_problem(steps):
    import occluder_from_shadow as O
    res, spp = 40, 8
    true_v, faces = O.sphere_shape(2, O.TRUE_CENTER)
    scene = O.build_scene(res, (true_v, faces))
    targets = [pathgrad.render(scene, spp=256, seed=10**6)]
    start_v, _ = O.sphere_shape(2, O.TRUE_CENTER + O.START_OFFSET)

    def setup():
        sc = O.build_scene(res, (start_v, faces))
        params = pathgrad.parameters(sc, O.KEY)
        opt = mi.ad.Adam(lr=0.05)
        opt["t"] = mi.Vector3f(0.0)
        base = dr.unravel(mi.Point3f, mi.Float(start_v.astype(np.float32).ravel()))

        def positions():
            return dr.ravel(base + opt["t"])

        def error():
            v = np.array(dr.detach(params[O.KEY])).reshape(-1, 3)
            return float(np.linalg.norm(v.mean(0) - true_v.mean(0)))
        return dict(scene=sc, params=params, key=O.KEY, positions=positions, opt=opt,
                    steps=steps, views=1, targets=targets, error=error, spp=spp)

    methods = {
        "pathgrad": pathgrad_renderer,
        "direct_projective": lambda: mitsuba_renderer({"type": "direct_projective"}),
        "prb_projective": lambda: mitsuba_renderer({"type": "prb_projective", "max_depth": 2}),
    }
    return setup, methods, [("error", "centre error (m)")]


POSE_KEY = "statue.vertex_positions"
POSE_TRUE_T = np.array([0.04, -0.03, 0.08])         # scene units
POSE_TRUE_R = np.array([15.0, -30.0, 10.0])         # Euler angles x, y, z (degrees)
POSE_START_DT = 0.15 * np.array([1.0, -0.5, 0.7]) / np.linalg.norm([1.0, -0.5, 0.7])
POSE_START_DR = np.array([5.0, -5.5, 4.5])          # about 10 degrees of rotation
#: low-frequency bumps of the sculpted mesh: (direction, height, width)
SCULPT_BUMPS = [((0.2, 0.3, 1.0), 0.22, 0.20), ((-0.8, 0.5, 0.1), 0.12, 0.30),
                ((0.6, -0.7, -0.3), 0.09, 0.15), ((-0.1, 1.0, -0.4), -0.10, 0.25)]


def sculpted_mesh(level: int = 6) -> tuple[np.ndarray, np.ndarray]:
    """An asymmetric, smoothly lumpy blob: an icosphere (10·4^level + 2
    vertices) displaced radially by fixed Gaussian bumps and a low-frequency
    ripple, stretched along y and centred on its vertex mean."""
    from pathgrad import shapes
    d, f = shapes.icosphere_arrays(level)
    r = 0.5 + 0.05 * np.sin(3 * d[:, 0] + 1) * np.cos(2 * d[:, 1] - 0.5)
    for c, height, width in SCULPT_BUMPS:
        c = np.asarray(c) / np.linalg.norm(c)
        r = r + height * np.exp(-np.sum((d - c) ** 2, 1) / width)
    v = d * r[:, None] * np.array([0.95, 1.2, 0.85])
    return v - v.mean(0), f


def pose_transform(T, t, angles):
    """``Tr(t) Rz Ry Rx`` for Euler ``angles`` (degrees), in the transform
    type ``T`` (``mi.Transform4f`` with attached Dr.Jit values, or
    ``mi.ScalarTransform4f`` with floats)."""
    m = T().translate(t)
    for axis in (2, 1, 0):
        m = m @ T().rotate(np.eye(3)[axis].tolist(), angles[axis])
    return m


def pose_matrix(t, angles) -> np.ndarray:
    """The 4x4 numpy matrix of a pose (see :func:`pose_transform`)."""
    T = mi.ScalarTransform4f
    return np.array(pose_transform(T, [float(x) for x in t], [float(a) for a in angles]).matrix)


def posed(m: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Points ``v`` (N, 3) moved by the 4x4 matrix ``m``."""
    return v @ m[:3, :3].T + m[:3, 3]


def pose_errors(m: np.ndarray, truth: np.ndarray) -> tuple[float, float]:
    """(translation error in units, rotation error in degrees: the angle of
    the rotation taking one orientation to the other)."""
    cos = (np.trace(m[:3, :3] @ truth[:3, :3].T) - 1) / 2
    return float(np.linalg.norm(m[:3, 3] - truth[:3, 3])), float(np.degrees(np.arccos(np.clip(cos, -1, 1))))


def pose_scene(res: int, vertices: np.ndarray, faces: np.ndarray) -> mi.Scene:
    """The sculpted mesh (smooth, diffuse) under a dim constant sky and a 1 x 1
    area light up to the right, lighting it from the side, out of view."""
    from pathgrad import scenes, shapes
    T = mi.ScalarTransform4f
    lamp = {"type": "rectangle",
            "to_world": T().look_at(origin=[2.5, 1.5, 0.5], target=[0, 0, 0], up=[0, 1, 0]).scale(0.5),
            "emitter": {"type": "area", "radiance": {"type": "rgb", "value": 30.0}}}
    mesh = shapes.mesh_from_arrays("statue", vertices, faces, smooth=True,
                                   bsdf=scenes.diffuse(0.75, 0.6, 0.45))
    return scenes.object_scene({"statue": mesh}, res=res, env=0.1, fov=35, origin=(0, 0, 3.2),
                               lights={"lamp": lamp})


def pose_problem(steps, guided=False):
    """The pose fit; ``guided``: also compare ``prb_projective`` with its defaults."""
    res, spp = 64, 16
    base, faces = sculpted_mesh()
    truth = pose_matrix(POSE_TRUE_T, POSE_TRUE_R)
    targets = [pathgrad.render(pose_scene(res, posed(truth, base), faces), spp=512, seed=10**6)]
    t0, r0 = POSE_TRUE_T + POSE_START_DT, POSE_TRUE_R + POSE_START_DR
    start_v = posed(pose_matrix(t0, r0), base)
    base_pts = dr.unravel(mi.Point3f, mi.Float(base.astype(np.float32).ravel()))

    def setup():
        sc = pose_scene(res, start_v, faces)
        params = pathgrad.parameters(sc, POSE_KEY)
        opt = mi.ad.Adam(lr=0.01)
        opt["t"] = mi.Vector3f(*map(float, t0))
        opt["r"] = mi.Vector3f(*map(float, r0))
        opt.set_learning_rate(t=0.01, r=0.5)

        def positions():
            return dr.ravel(pose_transform(mi.Transform4f, opt["t"], opt["r"]) @ base_pts)

        def error():
            t, r = (np.array(opt[k]).ravel() for k in ("t", "r"))
            return pose_errors(pose_matrix(t, r), truth)
        return dict(scene=sc, params=params, key=POSE_KEY, positions=positions, opt=opt,
                    steps=steps, views=1, targets=targets, error=error, spp=spp)

    methods = {
        "pathgrad": pathgrad_renderer,
        UNGUIDED: unguided_direct,
    }
    if guided:
        methods["prb_projective"] = lambda: mitsuba_renderer({"type": "prb_projective", "max_depth": 2})
    return setup, methods, [("translation_error", "translation error (units)"),
                            ("rotation_error_deg", "rotation error (degrees)")]


PROBLEMS = {"shape": (shape_problem, 60), "occluder": (occluder_problem, 80),
            "pose": (pose_problem, 100)}


def run_methods(name, setup, methods, budget_factor):
    """Each method's loop on a fresh setup: {method: (times, errors, start errors)}.
    The methods after pathgrad stop after ``budget_factor`` times its total time."""
    curves = {}
    for mname, renderer in methods.items():
        print(f"[{name}] {mname} ...", flush=True)
        cfg = setup()
        err0 = np.atleast_1d(cfg["error"]())
        budget = budget_factor * curves["pathgrad"][0][-1] if curves else float("inf")
        t, e = run_loop(renderer(), budget=budget, **cfg)
        curves[mname] = (t, e, err0)
    return curves


def summarise(curves, labels):
    """One row per method: steps, median s/step, total time, and per error
    measure ``<key>_start``, ``<key>_end`` and ``<key>_at_pathgrad_time``."""
    t_pg = curves["pathgrad"][0][-1]
    rows = []
    for mname, (t, e, err0) in curves.items():
        within = t <= t_pg
        row = {"method": mname, "steps": len(t), "sec_per_step": float(np.median(np.diff(np.r_[0, t]))),
               "total_s": float(t[-1])}
        for j, (key, _) in enumerate(labels):
            row[f"{key}_start"] = float(err0[j])
            row[f"{key}_end"] = float(e[-1, j])
            row[f"{key}_at_pathgrad_time"] = float(e[within, j][-1]) if within.any() else float(err0[j])
        rows.append(row)
    return rows


def targets(rows, labels):
    """The benchmark targets: pathgrad's and unguided direct_projective's
    seconds per step, their ratio, and the final errors of both (None when
    the problem does not run that method)."""
    by = {r["method"]: r for r in rows}
    pg, dp = by["pathgrad"], by.get(UNGUIDED)
    if dp is None:
        return None
    out = {"pathgrad_sec_per_step": pg["sec_per_step"], "direct_projective_sec_per_step": dp["sec_per_step"],
           "sec_per_step_ratio_direct_projective_over_pathgrad": dp["sec_per_step"] / pg["sec_per_step"]}
    for key, _ in labels:
        out[f"pathgrad_{key}_end"] = pg[f"{key}_end"]
        out[f"direct_projective_{key}_end"] = dp[f"{key}_end"]
    return out


def print_table(name, rows, labels):
    """The rows as a Markdown table, errors as 'end (at pathgrad's time)'."""
    print(f"\n{name}: {rows[0]['steps']} steps; " + "; ".join(
        f"{k}: {desc}, start {rows[0][k + '_start']:.4f}" for k, desc in labels))
    print("| method | steps run | s/step | total s | "
          + " | ".join(f"{k} end (at pathgrad's time)" for k, _ in labels) + " |")
    print("|---|---|---|---|" + "---|" * len(labels))
    for r in rows:
        errs = " | ".join(f"{r[k + '_end']:.4f} ({r[k + '_at_pathgrad_time']:.4f})" for k, _ in labels)
        print(f"| {r['method']} | {r['steps']} | {r['sec_per_step']:.3f} | {r['total_s']:.1f} | {errs} |")


def print_targets(name, tg, labels):
    if tg is None:
        return
    errs = "; ".join(f"{k} {tg[f'pathgrad_{k}_end']:.4f} vs {tg[f'direct_projective_{k}_end']:.4f}"
                     for k, _ in labels)
    print(f"targets [{name}]: s/step pathgrad {tg['pathgrad_sec_per_step']:.3f} vs {UNGUIDED} "
          f"{tg['direct_projective_sec_per_step']:.3f} (ratio "
          f"{tg['sec_per_step_ratio_direct_projective_over_pathgrad']:.2f}); final {errs}")


def plot(name, curves, labels, out):
    """Error against wall time, one panel per error measure, to
    <out>/optimisation_<name>.png (skipped without matplotlib)."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return
    fig, axes = plt.subplots(1, len(labels), figsize=(5 * len(labels), 3.4), squeeze=False)
    for j, (ax, (_, desc)) in enumerate(zip(axes[0], labels)):
        for mname, (t, e, err0) in curves.items():
            ax.semilogy(np.r_[0, t], np.r_[err0[j], e[:, j]], label=mname)
        ax.set_xlabel("wall time (s)"), ax.set_ylabel(desc), ax.grid(alpha=0.3)
        ax.legend(fontsize=8), ax.set_title(name)
    fig.tight_layout()
    fig.savefig(os.path.join(out, f"optimisation_{name}.png"), dpi=110)
    plt.close(fig)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--problem", choices=[*PROBLEMS, "all"], default="all")
    ap.add_argument("--steps", type=int, help="optimisation steps (default: the examples' --fast; "
                                              "pose: 100)")
    ap.add_argument("--budget", type=float, default=4.0,
                    help="stop the other methods after this many times pathgrad's total time "
                         "(default 4)")
    ap.add_argument("--pose-guided", action="store_true",
                    help="pose: also run prb_projective with its guided defaults (slow)")
    ap.add_argument("--out", default=RESULTS, help="folder for optimisation.json and the plots "
                                                   "(default benchmarks/results)")
    args = ap.parse_args(argv)
    os.makedirs(args.out, exist_ok=True)
    names = list(PROBLEMS) if args.problem == "all" else [args.problem]
    report = {"meta": meta(), "targets": {}}
    for name in names:
        make, default_steps = PROBLEMS[name]
        opts = {"guided": args.pose_guided} if name == "pose" else {}
        setup, methods, labels = make(args.steps or default_steps, **opts)
        curves = run_methods(name, setup, methods, args.budget)
        report[name] = rows = summarise(curves, labels)
        tg = targets(rows, labels)
        if tg is not None:
            report["targets"][name] = tg
        print_table(name, rows, labels)
        print_targets(name, tg, labels)
        plot(name, curves, labels, args.out)
    with open(os.path.join(args.out, "optimisation.json"), "w") as fh:
        json.dump(report, fh, indent=2)


if __name__ == "__main__":
    main()
