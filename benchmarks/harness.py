"""Shared measuring code for the benchmarks: finite-difference references,
gradients by any integrator (pathgrad's or Mitsuba's) in forward and reverse
mode, wall time and Dr.Jit peak memory. Every comparison runs in one process
on the same scene, so the ratios are like for like."""
from __future__ import annotations

import dataclasses
import os
import platform
import statistics
import time

import drjit as dr
import mitsuba as mi
import numpy as np

import pathgrad
from pathgrad.gradcheck import _direction_like
from pathgrad.integrator import integrator_class

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCENES = os.path.join(ROOT, "scenes")
RESULTS = os.path.join(ROOT, "benchmarks", "results")


def meta(**extra) -> dict:
    return {"variant": mi.variant(), "mitsuba": mi.__version__, "drjit": dr.__version__,
            "machine": platform.machine(), "cpus": os.cpu_count(),
            "date": time.strftime("%Y-%m-%d %H:%M:%S"), **extra}


def parse_args(doc: str, argv, *, spp, repeats, fd_spp, fd_seeds=8, res=48, spp_list=False):
    """The flags every comparison benchmark takes, with its own defaults
    (``spp_list``: ``--spp`` takes several values)."""
    import argparse
    ap = argparse.ArgumentParser(description=doc.split("\n\n")[0])
    ap.add_argument("--res", type=int, default=res, help=f"image width = height (default {res})")
    if spp_list:
        ap.add_argument("--spp", type=int, nargs="+", default=spp,
                        help=f"samples per pixel to compare at (default {spp})")
    else:
        ap.add_argument("--spp", type=int, default=spp, help=f"samples per pixel (default {spp})")
    ap.add_argument("--repeats", type=int, default=repeats,
                    help=f"timing repetitions, median taken (default {repeats})")
    ap.add_argument("--fd-spp", type=int, default=fd_spp,
                    help=f"samples per pixel of the finite-difference reference (default {fd_spp})")
    ap.add_argument("--fd-seeds", type=int, default=fd_seeds,
                    help=f"seeds of the finite-difference reference (default {fd_seeds})")
    ap.add_argument("--cases", nargs="*", help="subset of case names")
    return ap.parse_args(argv)


def save_results(name: str, table: str, meta_info: dict, rows) -> None:
    """Write ``benchmarks/results/<name>.json`` (meta + rows) and ``<name>.txt`` (the table)."""
    import json
    os.makedirs(RESULTS, exist_ok=True)
    with open(os.path.join(RESULTS, name + ".json"), "w") as fh:
        json.dump({"meta": meta_info, "rows": rows}, fh, indent=1)
    with open(os.path.join(RESULTS, name + ".txt"), "w") as fh:
        fh.write(table + "\n")


def _backend():
    return dr.JitBackend.CUDA if mi.variant().startswith("cuda") else dr.JitBackend.LLVM


@dataclasses.dataclass
class Problem:
    """One scene, one parameter, one direction v, and a fixed functional w."""

    name: str
    scene: mi.Scene
    key: str
    eps: float
    direction: object = None

    def __post_init__(self):
        self.params = pathgrad.parameters(self.scene, self.key, enable_grad=False)
        self.theta0 = type(self.params[self.key])(self.params[self.key])
        self.v = _direction_like(self.theta0, self.direction, self.key)

    def _set(self, value):
        self.params[self.key] = value
        self.params.update()

    def reset(self):
        self._set(type(self.theta0)(self.theta0))

    # -------------------------------------------------------------- reference
    def fd_reference(self, spp: int, seeds: int) -> np.ndarray:
        """Central differences with common random numbers, mean over seeds."""
        per_seed = []
        for s in range(seeds):
            imgs = []
            for sign in (1, -1):
                self._set(self.theta0 + sign * self.eps * self.v)
                imgs.append(np.array(pathgrad.render(self.scene, spp=spp, seed=7000 + s),
                                     np.float64)[..., :3])
            per_seed.append((imgs[0] - imgs[1]) / (2 * self.eps))
        self.reset()
        per_seed = np.stack(per_seed)
        self.fd = per_seed.mean(0)
        #: relative L2 noise of the reference itself (the floor of every error)
        self.ref_noise = float(np.sqrt(per_seed.var(0, ddof=1).sum() / seeds)
                               / np.linalg.norm(self.fd))
        rng = np.random.default_rng(0)
        self.w = rng.random(self.fd.shape) * np.sign(self.fd)
        shape = np.array(pathgrad.render(self.scene, spp=1)).shape
        w_full = np.zeros(shape, np.float32)
        w_full[..., :3] = self.w
        self.W = mi.TensorXf(w_full)
        self.ref_reverse = float(np.sum(self.w * self.fd))
        return self.fd

    # -------------------------------------------------------------- gradients
    @staticmethod
    def _render(scene, params, integ, spp, seed):
        if isinstance(integ, integrator_class()):
            return pathgrad.render(scene, params, spp=1, spp_grad=spp, seed_grad=seed,
                                   integrator=integ)
        return mi.render(scene, params, integrator=integ, spp=1, spp_grad=spp, seed_grad=seed)

    def reverse(self, integ, spp: int, seed: int) -> float:
        """⟨∂θ⟨w, I⟩, v⟩ by dr.backward."""
        leaf = type(self.theta0)(self.theta0)
        dr.enable_grad(leaf)
        self._set(leaf)
        img = self._render(self.scene, self.params, integ, spp, seed)
        dr.backward(dr.sum(img * self.W, axis=None))
        val = float(dr.sum(dr.ravel(dr.grad(leaf)) * dr.ravel(self.v), axis=None)[0])
        self.reset()
        return val

    def forward(self, integ, spp: int, seed: int) -> np.ndarray:
        """Gradient image along v (Mitsuba's integrators by the documented
        route: tangent pushed into the scene first, then render_forward)."""
        t = mi.Float(0.0)
        dr.enable_grad(t)
        self._set(self.theta0 + t * self.v)
        if isinstance(integ, integrator_class()):
            img = pathgrad.render(self.scene, self.params, spp=1, spp_grad=spp,
                                  seed_grad=seed, integrator=integ)
            dr.forward(t)
            g = np.array(dr.grad(img))
        else:
            dr.forward(t, dr.ADFlag.ClearEdges)
            g = np.array(integ.render_forward(self.scene, self.params, seed=seed, spp=spp))
        self.reset()
        return g[..., :3]

    # -------------------------------------------------------------- metrics
    def errors(self, integ, spp: int, seeds=(0, 1, 2)) -> dict:
        """Mean relative errors against the FD reference over a few seeds."""
        fd_norm = np.linalg.norm(self.fd)
        img = [np.linalg.norm(self.forward(integ, spp, 100 + s) - self.fd) / fd_norm for s in seeds]
        rev = [abs(self.reverse(integ, spp, 200 + s) - self.ref_reverse) / abs(self.ref_reverse)
               for s in seeds]
        raw = float(np.sqrt(np.mean(np.square(img))))
        # E‖g − FD‖² = ‖bias‖² + Var g + Var FD: remove the reference's share
        corrected = float(np.sqrt(max(raw ** 2 - self.ref_noise ** 2, 0.0)))
        return {"image_rel_error": corrected, "image_rel_error_raw": raw,
                "reverse_rel_error": float(np.sqrt(np.mean(np.square(rev))))}

    def seconds(self, integ, spp: int, repeats: int = 3) -> float:
        """Median wall time of render + dr.backward (after a warm-up call)."""
        times = []
        for rep in range(repeats + 1):
            t0 = time.perf_counter()
            self.reverse(integ, spp, 300 + rep)
            dr.eval()
            dr.sync_thread()
            if rep:
                times.append(time.perf_counter() - t0)
        return statistics.median(times)

    def peak_mib(self, integ, spp: int) -> float:
        """Dr.Jit's peak allocation during one render + dr.backward."""
        dr.eval()
        dr.sync_thread()
        dr.flush_malloc_cache()
        dr.detail.malloc_clear_statistics()
        self.reverse(integ, spp, 400)
        dr.sync_thread()
        return dr.detail.malloc_watermark(_backend()) / 2 ** 20

    def measure(self, integ, spp: int, repeats: int = 3) -> dict:
        out = self.errors(integ, spp)
        out["seconds"] = self.seconds(integ, spp, repeats)
        out["peak_mib"] = self.peak_mib(integ, spp)
        out["spp"] = spp
        return out


def equal_time_spp(problem: Problem, integ, target_seconds: float, start_spp: int,
                   repeats: int = 3, max_spp: int = 4096) -> tuple[int, float]:
    """Largest power-of-two spp (from start_spp / 8 up) whose time stays
    within ``target_seconds`` (+10%, the spread of repeated timings here);
    returns (spp, seconds). Timings of small renders are noisy, so one slow
    measurement does not end the search: it stops after two in a row."""
    spp = max(start_spp // 8, 1)
    best = (spp, problem.seconds(integ, spp, repeats))
    over = 0
    while spp * 2 <= max_spp and over < 2:
        spp *= 2
        t = problem.seconds(integ, spp, repeats)
        if t <= 1.1 * target_seconds:
            best, over = (spp, t), 0
        else:
            over += 1
    return best


def compare(cases, make_pathgrad, make_mitsuba, *, spp, repeats, fd_spp, fd_seeds, out_name,
            res, only=None):
    """Run every case: FD reference, pathgrad and each Mitsuba integrator at
    equal spp, and pathgrad at equal time with each Mitsuba integrator.

    ``cases``: (name, scene, key, eps, direction) tuples; ``make_pathgrad(scene)``
    and ``make_mitsuba(scene) -> {label: integrator}`` build the integrators.
    Prints a table and writes ``results/<out_name>.{json,txt}``."""
    import sys
    rows = []
    for name, scene, key, eps, direction in cases:
        if only and name not in only:
            continue
        print(f"... {name}", file=sys.stderr, flush=True)
        prob = Problem(name, scene, key, eps, direction)
        prob.fd_reference(fd_spp, fd_seeds)
        pg = make_pathgrad(scene)
        row = {"case": name, "spp": spp, "ref_noise": prob.ref_noise,
               "pathgrad": prob.measure(pg, spp, repeats)}
        for label, integ in make_mitsuba(scene).items():
            m = prob.measure(integ, spp, repeats)
            spp_eq, _ = equal_time_spp(prob, pg, m["seconds"], spp, repeats)
            row[label] = m
            row[label + " | pathgrad equal time"] = prob.measure(pg, spp_eq, repeats)
        rows.append(row)

    labels = [k for k in rows[0] if k not in ("case", "spp", "ref_noise", "pathgrad")
              and "|" not in k] if rows else []
    hdr = (f"{'case':<18}{'integrator':<24}{'spp':>5}{'img err':>9}{'rev err':>9}"
           f"{'s':>8}{'MiB':>8}   equal time: pathgrad spp, img err, rev err, err ratio")
    lines = [hdr, "-" * len(hdr)]
    for r in rows:
        p = r["pathgrad"]
        lines.append(f"{r['case']:<18}{'pathgrad':<24}{p['spp']:>5}{p['image_rel_error']:>9.4f}"
                     f"{p['reverse_rel_error']:>9.4f}{p['seconds']:>8.3f}{p['peak_mib']:>8.1f}"
                     f"   (FD reference noise {r['ref_noise']:.4f})")
        for label in labels:
            m, e = r[label], r[label + " | pathgrad equal time"]
            ratio = e["image_rel_error"] / max(m["image_rel_error"], 1e-12)
            lines.append(f"{'':<18}{label:<24}{m['spp']:>5}{m['image_rel_error']:>9.4f}"
                         f"{m['reverse_rel_error']:>9.4f}{m['seconds']:>8.3f}{m['peak_mib']:>8.1f}"
                         f"   {e['spp']:>5} {e['image_rel_error']:.4f} {e['reverse_rel_error']:.4f}"
                         f"  {ratio:.2f}")
    table = "\n".join(lines)
    print(table)
    save_results(out_name, table, meta(res=res, fd_spp=fd_spp, fd_seeds=fd_seeds, spp=spp), rows)
    return rows
