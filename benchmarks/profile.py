"""Profile of one reverse-mode gradient: where the time of each boundary
estimator goes, phase by phase, and Dr.Jit's per-kernel times.

Each phase of every estimator (``prepare``; ``sample`` + ``radiance``, which
run as one kernel; ``splat``) is evaluated and timed on its own (so the
phases cannot fuse: the sum is a little above a normal render's time), and
the kernel history of a normal render lists the kernels that took longest,
labelled by the loops they contain.

    python benchmarks/profile.py [--res 128] [--spp 64] [--cases ...] [--spp-budgets]

Writes ``benchmarks/results/profile[_<tag>].txt``.
"""
from __future__ import annotations

import argparse
import os
import re
import sys
import time

import drjit as dr
import mitsuba as mi

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import pathgrad  # noqa: E402
from pathgrad.boundary import estimator as estimator_module  # noqa: E402
from harness import RESULTS  # noqa: E402
from throughput import cases  # noqa: E402


class PhaseTimer:
    """Replaces ``BoundaryEstimator.estimate`` by a copy that evaluates and
    times each phase (seconds by (estimator, phase))."""

    def __init__(self):
        self.seconds = {}

    def tick(self, name, t0):
        dr.eval()
        dr.sync_thread()
        self.seconds[name] = self.seconds.get(name, 0.0) + time.perf_counter() - t0

    def __enter__(self):
        timer = self
        self._orig = estimator_module.BoundaryEstimator.estimate

        def estimate(est, ctx, spp):
            if spp <= 0:
                return None
            n = est.sample_count(ctx, spp)
            total = None
            t0 = time.perf_counter()
            with dr.suspend_grad():
                tasks = est.prepare(ctx)
            timer.tick((est.name, "prepare"), t0)
            for task in tasks:
                t0 = time.perf_counter()
                with dr.suspend_grad():
                    smp = est.sample(ctx, task, n)
                    est.radiance_difference(ctx, smp)
                    dr.eval(vars(smp))
                timer.tick((est.name, f"sample+radiance ({n} samples)"), t0)
                t0 = time.perf_counter()
                img = est.splat(ctx, smp)
                dr.eval(img)
                timer.tick((est.name, "splat"), t0)
                total = img if total is None else total + img
            return total
        estimator_module.BoundaryEstimator.estimate = estimate
        return self

    def __exit__(self, *exc):
        estimator_module.BoundaryEstimator.estimate = self._orig


def gradient(scene, params, key, spp, integ):
    img = pathgrad.render(scene, params, spp=spp, seed=1, integrator=integ)
    dr.backward(dr.sum(img, axis=None))
    dr.eval(dr.grad(params[key]))
    dr.sync_thread()
    dr.clear_grad(params[key])


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--res", type=int, default=128)
    ap.add_argument("--spp", type=int, default=64)
    ap.add_argument("--cases", nargs="*", default=["receiver (area)", "occluder (area)"])
    ap.add_argument("--spp-budgets", action="store_true",
                    help="every estimator at boundary_spp = spp")
    ap.add_argument("--tag", default="", help="suffix of the results file")
    args = ap.parse_args(argv)
    lines = []
    for name, (make, key) in cases(args.res).items():
        if name not in args.cases:
            continue
        scene = make()
        params = pathgrad.parameters(scene, key)
        extra = {"boundary_spp": float(args.spp)} if args.spp_budgets else {}
        integ = pathgrad.make_integrator(max_depth=scene.integrator().max_depth, **extra)
        gradient(scene, params, key, args.spp, integ)        # compile, pilot
        t0 = time.perf_counter()
        gradient(scene, params, key, args.spp, integ)
        total = time.perf_counter() - t0
        with PhaseTimer() as timer:
            gradient(scene, params, key, args.spp, integ)
        dr.set_flag(dr.JitFlag.KernelHistory, True)
        dr.kernel_history()
        gradient(scene, params, key, args.spp, integ)
        hist = dr.kernel_history((dr.KernelType.JIT,))
        dr.set_flag(dr.JitFlag.KernelHistory, False)
        budgets = integ.sample_budgets(scene, params, args.spp) \
            if hasattr(integ, "sample_budgets") else "spp"   # (older versions)
        lines.append(f"{name}: {args.res}x{args.res}, {args.spp} spp, reverse mode, "
                     f"{total:.3f} s per gradient; boundary samples per pixel {budgets}")
        for (est, phase), s in timer.seconds.items():
            if s > 0.0005:
                lines.append(f"  {est:16s} {phase:36s} {s:8.3f} s")
        lines.append(f"  kernels: {len(hist)}, {sum(k['execution_time'] for k in hist) / 1e3:.3f} s "
                     "of execution; the longest:")
        for k in sorted(hist, key=lambda k: -k["execution_time"])[:6]:
            ir = k.get("ir")
            text = ir.getvalue() if hasattr(ir, "getvalue") else str(ir)
            labels = sorted(set(re.findall(r"pathgrad [a-z ]+[a-z]", text)))
            lines.append(f"    {k['execution_time'] / 1e3:7.3f} s  {k['size']:>9d} lanes  "
                         f"{k['operation_count']:>5d} ops  {', '.join(labels) or '-'}")
        print("\n".join(lines[-12:]), flush=True)
    os.makedirs(RESULTS, exist_ok=True)
    with open(os.path.join(RESULTS, "profile" + (f"_{args.tag}" if args.tag else "") + ".txt"),
              "w") as fh:
        fh.write("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
