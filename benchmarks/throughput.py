"""Benchmark: boundary samples per second of each estimator, and seconds per
gradient next to the interior-only gradient.

For each case, in one process: the reverse-mode gradient (``render`` +
``dr.backward`` of the image sum) with the boundary term off (interior only),
then with each boundary estimator that contributes run alone. An
estimator's time is its run minus the interior-only run; its throughput is the
number of boundary samples it drew divided by that time. ``--spp`` takes
several values; ``--budget`` passes boundary sample budgets to the
integrator (e.g. ``shadow_spp=1``), ``--spp-budgets`` sets every
estimator's to the spp (the rule before the default budget balanced them).

    python benchmarks/throughput.py [--res 128] [--spp 16 256] [--spp-budgets] [--cases ...]
    python benchmarks/throughput.py --full --spp 64 1024 16384

``--full`` times the full gradient (all estimators, default budgets) instead
of each estimator alone. Writes ``benchmarks/results/throughput[_full].{json,txt}``
(``--tag`` adds a suffix, e.g. ``before``).
"""
from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time

import drjit as dr
import mitsuba as mi

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import pathgrad  # noqa: E402
from pathgrad import scenes, shapes  # noqa: E402
from pathgrad.boundary import estimator as estimator_module  # noqa: E402
from harness import meta, save_results  # noqa: E402


def cases(res):
    ball = shapes.icosphere(3, 0.8, name="ball", smooth=False, bsdf=scenes.diffuse(0.2),
                            center=(0.3, 0.1, 0))
    return {
        "receiver (area)": (lambda: scenes.shadow_scene("area", res=res), "floor.vertex_positions"),
        "occluder (area)": (lambda: scenes.shadow_scene("area", res=res), "occ.vertex_positions"),
        "light moved": (lambda: scenes.shadow_scene("area", res=res), "light.vertex_positions"),
        "occluder (env)": (lambda: scenes.shadow_scene("env", res=res), "occ.vertex_positions"),
        "occluder (point)": (lambda: scenes.shadow_scene("point", res=res), "occ.vertex_positions"),
        "sphere (box filter)": (lambda: scenes.object_scene({"ball": ball}, res=res),
                                "ball.vertex_positions"),
        "sphere (gaussian, border)": (lambda: scenes.object_scene(
            {"ball": ball}, res=res, rfilter="gaussian", sample_border=True), "ball.vertex_positions"),
    }


class Counter:
    """Records the boundary samples every estimator draws (the lane count of
    what its ``sample`` phase returns, summed over tasks), by wrapping each
    estimator class's ``sample``."""

    def __init__(self):
        self.counts = {}

    def __enter__(self):
        base = estimator_module.BoundaryEstimator
        self._saved = [(cls, cls.__dict__["sample"]) for cls in base.__subclasses__()]
        for cls, fn in self._saved:
            setattr(cls, "sample", self._wrap(fn))
        return self

    def _wrap(self, fn):
        def sample(est, ctx, task, n):
            smp = fn(est, ctx, task, n)
            lanes = max(dr.width(v) for v in vars(smp).values() if dr.is_array_v(v))
            self.counts[est.name] = self.counts.get(est.name, 0) + lanes
            return smp
        return sample

    def __exit__(self, *exc):
        for cls, fn in self._saved:
            setattr(cls, "sample", fn)


def gradient_seconds(scene, params, key, spp, integ, repeats):
    """Median seconds of render + backward, after a warm-up run at low spp
    (Dr.Jit's kernels do not depend on the array sizes: it compiles them,
    and runs the pilot of the default budgets)."""
    times = []
    for r in range(repeats + 1):
        dr.sync_thread()
        t0 = time.perf_counter()
        img = pathgrad.render(scene, params, spp=spp if r else min(spp, 4), seed=r,
                              integrator=integ)
        dr.backward(dr.sum(img, axis=None))
        dr.eval(dr.grad(params[key]))
        dr.sync_thread()
        if r:
            times.append(time.perf_counter() - t0)
        dr.clear_grad(params[key])
    return statistics.median(times)


def only(integ, name):
    """``integ`` restricted to the boundary estimator ``name``."""
    all_estimators = type(integ)._estimators

    def estimators(self):
        return [e for e in all_estimators(self) if e.name == name]
    return estimators


def estimator_names(integ, scene, params, key, spp):
    with Counter() as c:
        img = pathgrad.render(scene, params, spp=spp, seed=0, integrator=integ)
        dr.backward(dr.sum(img, axis=None))
        dr.clear_grad(params[key])
    return c.counts


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--res", type=int, default=128)
    ap.add_argument("--spp", type=int, nargs="+", default=[16, 256])
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--cases", nargs="*")
    ap.add_argument("--full", action="store_true")
    ap.add_argument("--budget", nargs="*", default=[], help="name=value integrator budgets")
    ap.add_argument("--spp-budgets", action="store_true",
                    help="every estimator at boundary_spp = spp (the budget before the "
                         "default balanced it; for samples-per-second comparisons)")
    ap.add_argument("--tag", default="")
    args = ap.parse_args(argv)
    budgets = {k: float(v) for k, v in (b.split("=") for b in args.budget)}
    rows, lines = [], []
    head = f"{'case':27s} {'spp':>6s} {'estimator':16s} {'samples':>10s} {'s':>8s} {'M samples/s':>12s} {'x interior':>10s}"
    lines += [head, "-" * len(head)]
    for name, (make, key) in cases(args.res).items():
        if args.cases and name not in args.cases:
            continue
        scene = make()
        params = pathgrad.parameters(scene, key)
        depth = scene.integrator().max_depth
        for spp in args.spp:
            t_int = gradient_seconds(scene, params, key, spp,
                                     pathgrad.make_integrator(max_depth=depth, boundary=False),
                                     args.repeats)
            row = dict(case=name, spp=spp, interior_s=t_int, estimators={})
            lines.append(f"{name:27s} {spp:6d} {'(interior only)':16s} {'':>10s} {t_int:8.3f}")
            extra = {"boundary_spp": float(spp)} if args.spp_budgets else {}
            integ = pathgrad.make_integrator(max_depth=depth, **budgets, **extra)
            counts = estimator_names(integ, scene, params, key, spp)
            todo = [("(full)", None)] if args.full else [(e, e) for e in counts if counts[e]]
            for label, est in todo:
                cls = type(integ)
                saved = cls._estimators
                if est is not None:
                    cls._estimators = only(integ, est)
                try:
                    t = gradient_seconds(scene, params, key, spp, integ, args.repeats)
                finally:
                    cls._estimators = saved
                n = sum(counts.values()) if est is None else counts[est]
                rate = n / max(t - t_int, 1e-9) / 1e6
                row["estimators"][label] = dict(samples=n, seconds=t, msps=rate)
                lines.append(f"{'':27s} {spp:6d} {label:16s} {n:10d} {t:8.3f} {rate:12.3f} "
                             f"{t / t_int:10.2f}")
            rows.append(row)
            print("\n".join(lines[-(len(todo) + 1):]), flush=True)
    rev = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True,
                         text=True, cwd=os.path.dirname(os.path.abspath(__file__))).stdout.strip()
    out = "throughput" + ("_full" if args.full else "") + (f"_{args.tag}" if args.tag else "")
    save_results(out, "\n".join(lines), meta(commit=rev, res=args.res, budgets=budgets), rows)
    print("\n".join(lines))


if __name__ == "__main__":
    main()
