"""Whole optimisations, pathgrad against Mitsuba's projective integrators.

Runs the loops of two examples with the same scene, targets, parametrisation,
optimiser, step count and seeds, changing only the renderer that produces the
image and its gradient:

- ``shape``: multi-view shape reconstruction (examples/shape_reconstruction.py,
  its --fast settings: 8 views, 32 px, 4 spp, 162 vertices, large steps);
- ``occluder``: the hidden occluder's position from its shadow
  (examples/occluder_from_shadow.py, --fast settings: 40 px, 8 spp).

Methods: ``pathgrad.render``; ``mi.render`` with ``prb_projective`` (Mitsuba
defaults, and with ``sppi=0``, i.e. primary visibility only) for the shape,
``direct_projective`` and ``prb_projective`` for the occluder. The other
methods stop after ``--budget`` times pathgrad's total time. Reported per
method: steps run, median seconds per step, the parameter error at the end,
and the error reached within pathgrad's total time ("equal time"); a plot of error
against wall time goes to benchmarks/results/optimisation_<problem>.png.

    python benchmarks/optimisation.py [--problem shape|occluder|all] [--steps N]
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


def run_loop(render, *, scene, params, key, positions, opt, steps, views, targets, error,
             spp, seed=0, budget=float("inf")):
    """The examples' loop with a given renderer; returns per-step (time, error).
    Stops early once ``budget`` seconds have passed."""
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
        dr.eval(opt["u" if "u" in opt.keys() else "t"])
        times.append(time.perf_counter() - t_start)
        errors.append(error())
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
    }
    return setup, methods, "mean distance to the target surface (m)"


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
    return setup, methods, "centre error (m)"


PROBLEMS = {"shape": (shape_problem, 60), "occluder": (occluder_problem, 80)}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--problem", choices=[*PROBLEMS, "all"], default="all")
    ap.add_argument("--steps", type=int, help="optimisation steps (default: the examples' --fast)")
    ap.add_argument("--budget", type=float, default=4.0,
                    help="stop the other methods after this many times pathgrad's total time "
                         "(default 4)")
    args = ap.parse_args(argv)
    os.makedirs(RESULTS, exist_ok=True)
    names = list(PROBLEMS) if args.problem == "all" else [args.problem]
    report = {"meta": meta()}
    for name in names:
        make, default_steps = PROBLEMS[name]
        setup, methods, label = make(args.steps or default_steps)
        curves = {}
        for mname, renderer in methods.items():
            print(f"[{name}] {mname} ...", flush=True)
            cfg = setup()
            err0 = cfg["error"]()
            budget = (args.budget * curves["pathgrad"][0][-1] if curves else float("inf"))
            t, e = run_loop(renderer(), budget=budget, **cfg)
            curves[mname] = (t, e, err0)
        t_pg = curves["pathgrad"][0][-1]
        rows = []
        for mname, (t, e, err0) in curves.items():
            within = e[t <= t_pg]
            rows.append({"method": mname, "steps": len(t), "sec_per_step": float(np.median(np.diff(np.r_[0, t]))),
                         "total_s": float(t[-1]), "error_start": err0, "error_end": float(e[-1]),
                         "error_at_pathgrad_time": float(within[-1]) if len(within) else err0})
        report[name] = rows
        print(f"\n{name}: {label}, {len(curves['pathgrad'][0])} steps")
        print("| method | steps run | s/step | total s | error start | error end | "
              "error at pathgrad's time |")
        print("|---|---|---|---|---|---|---|")
        for r in rows:
            print(f"| {r['method']} | {r['steps']} | {r['sec_per_step']:.3f} | {r['total_s']:.1f} | "
                  f"{r['error_start']:.4f} | {r['error_end']:.4f} | {r['error_at_pathgrad_time']:.4f} |")
        try:
            import matplotlib
            matplotlib.use("Agg")
            import matplotlib.pyplot as plt
            fig, ax = plt.subplots(figsize=(5, 3.4))
            for mname, (t, e, err0) in curves.items():
                ax.semilogy(np.r_[0, t], np.r_[err0, e], label=mname)
            ax.set_xlabel("wall time (s)"), ax.set_ylabel(label), ax.grid(alpha=0.3)
            ax.legend(fontsize=8), ax.set_title(name)
            fig.tight_layout()
            fig.savefig(os.path.join(RESULTS, f"optimisation_{name}.png"), dpi=110)
            plt.close(fig)
        except ImportError:
            pass
    with open(os.path.join(RESULTS, "optimisation.json"), "w") as fh:
        json.dump(report, fh, indent=2)


if __name__ == "__main__":
    main()
