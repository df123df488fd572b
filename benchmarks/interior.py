"""Benchmark: pathgrad's interior estimator against Mitsuba's ``prb``.

For each material/light scene and parameter, in the same process and at the
same spp, both integrators compute the reverse-mode gradient of a fixed
random linear functional ⟨w, I⟩ (the optimisation use case). Reported:

* error: relative L2 error of the forward-mode gradient image against a
  high-spp finite-difference reference (CRN, central differences), and of
  the reverse-mode value ⟨∂θ⟨w, I⟩, v⟩ against ⟨w, FD⟩;
* seconds per gradient: median wall time of a full ``render`` + ``dr.backward``
  (after one warm-up call that compiles the kernels);
* peak memory: Dr.Jit's allocation watermark during one backward pass.

Usage::

    python benchmarks/interior.py [--res 48] [--spp 16 64] [--repeats 5] [--out benchmarks/results]

Prints a table (ratios pathgrad / prb) and writes ``interior.json``.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time

import drjit as dr
import mitsuba as mi
import numpy as np

import pathgrad
from pathgrad.gradcheck import _direction_like

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCENES = os.path.join(ROOT, "scenes")

CASES = [
    # (name, scene, key, eps)
    ("albedo (GI)", "cbox.xml", "red.reflectance.value", 0.02),
    ("area light", "cbox.xml", "light.emitter.radiance.value", 0.2),
    ("roughness", "materials.xml", "metal.bsdf.alpha.value", 0.03),
    ("texels", "materials.xml", "floor.bsdf.reflectance.data", 0.02),
    ("point light", "materials.xml", "spot.intensity.value", 0.1),
    ("constant env", "materials.xml", "sky.radiance.value", 0.02),
    ("envmap", "envmap.xml", "sky.data", 0.05),
]


def _leaf_render(scene, params, key, theta0, integrator, spp, seed):
    leaf = type(theta0)(theta0)
    dr.enable_grad(leaf)
    params[key] = leaf
    params.update()
    if isinstance(integrator, str):  # pathgrad front door
        img = pathgrad.render(scene, params, spp=1, spp_grad=spp, seed_grad=seed)
    else:
        img = mi.render(scene, params, integrator=integrator, spp=1, spp_grad=spp,
                        seed_grad=seed)
    return leaf, img


def reverse_gradient(scene, params, key, theta0, integrator, spp, seed, W, v):
    leaf, img = _leaf_render(scene, params, key, theta0, integrator, spp, seed)
    dr.backward(dr.sum(img * W, axis=None))
    g = dr.grad(leaf)
    val = float(dr.sum(dr.ravel(g) * dr.ravel(v), axis=None)[0])
    params[key] = type(theta0)(theta0)
    params.update()
    return val


def forward_image(scene, params, key, theta0, integrator, spp, seed, v):
    t = mi.Float(0.0)
    dr.enable_grad(t)
    params[key] = theta0 + t * v
    params.update()
    if isinstance(integrator, str):
        img = pathgrad.render(scene, params, spp=1, spp_grad=spp, seed_grad=seed)
        dr.forward(t)
        g = np.array(dr.grad(img))
    else:
        # Mitsuba's documented route: push the tangent into the scene first,
        # then ask the integrator for the gradient image.
        dr.forward(t, dr.ADFlag.ClearEdges)
        g = np.array(integrator.render_forward(scene, params, seed=seed, spp=spp))
    params[key] = type(theta0)(theta0)
    params.update()
    return g[..., :3]


def run_case(name, fname, key, eps, res, spp_list, repeats, fd_spp, fd_seeds):
    scene = pathgrad.load_scene(os.path.join(SCENES, fname), res=res)
    depth = scene.integrator().max_depth
    integrators = {"pathgrad": "pathgrad",
                   "prb": mi.load_dict({"type": "prb", "max_depth": depth})}
    params = pathgrad.parameters(scene, key, enable_grad=False)
    theta0 = type(params[key])(params[key])
    v = _direction_like(theta0, None, key)

    # finite-difference reference (high spp, several seeds)
    def primal(value, seed):
        params[key] = value
        params.update()
        return np.array(pathgrad.render(scene, spp=fd_spp, seed=seed), np.float64)[..., :3]
    fd = np.mean([(primal(theta0 + eps * v, 7000 + s) - primal(theta0 - eps * v, 7000 + s))
                  / (2 * eps) for s in range(fd_seeds)], axis=0)
    params[key] = type(theta0)(theta0)
    params.update()
    rng = np.random.default_rng(0)
    w = rng.random(fd.shape) * np.sign(fd)
    W = mi.TensorXf(w.astype(np.float32))
    ref_rev = float(np.sum(w * fd))
    fd_norm = np.linalg.norm(fd)

    rows = []
    for spp in spp_list:
        row = {"case": name, "key": key, "spp": spp}
        for label, integ in integrators.items():
            # error (averaged over 3 seeds, each compared with the reference)
            errs_f, errs_r = [], []
            for s in range(3):
                g = forward_image(scene, params, key, theta0, integ, spp, 100 + s, v)
                errs_f.append(np.linalg.norm(g - fd) / fd_norm)
                r = reverse_gradient(scene, params, key, theta0, integ, spp, 200 + s, W, v)
                errs_r.append(abs(r - ref_rev) / abs(ref_rev))
            # timing (warm-up excluded)
            times = []
            for rep in range(repeats + 1):
                t0 = time.perf_counter()
                reverse_gradient(scene, params, key, theta0, integ, spp, 300 + rep, W, v)
                dr.eval()
                dr.sync_thread()
                if rep:
                    times.append(time.perf_counter() - t0)
            # peak memory of one backward pass
            dr.eval()
            dr.sync_thread()
            dr.flush_malloc_cache()
            dr.detail.malloc_clear_statistics()
            reverse_gradient(scene, params, key, theta0, integ, spp, 400, W, v)
            dr.sync_thread()
            peak = dr.detail.malloc_watermark(dr.JitBackend.LLVM if "llvm" in mi.variant()
                                              else dr.JitBackend.CUDA)
            row[label] = {"image_rel_error": float(np.mean(errs_f)),
                          "reverse_rel_error": float(np.mean(errs_r)),
                          "seconds": statistics.median(times),
                          "peak_mib": peak / 2 ** 20}
        rows.append(row)
    return rows


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--res", type=int, default=48)
    ap.add_argument("--spp", type=int, nargs="+", default=[16, 64])
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--fd-spp", type=int, default=1024)
    ap.add_argument("--fd-seeds", type=int, default=4)
    ap.add_argument("--cases", nargs="*", help="subset of case names")
    ap.add_argument("--out", default=os.path.join(ROOT, "benchmarks", "results"))
    args = ap.parse_args(argv)

    rows = []
    for name, fname, key, eps in CASES:
        if args.cases and name not in args.cases:
            continue
        print(f"... {name}", file=sys.stderr, flush=True)
        rows += run_case(name, fname, key, eps, args.res, args.spp, args.repeats,
                         args.fd_spp, args.fd_seeds)

    hdr = (f"{'case':<14}{'spp':>5} | {'img err pg':>10}{'prb':>8} | {'rev err pg':>10}{'prb':>8}"
           f" | {'s pg':>7}{'s prb':>7}{'ratio':>7} | {'MiB pg':>7}{'prb':>7}{'ratio':>7}")
    lines = [hdr, "-" * len(hdr)]
    for r in rows:
        a, b = r["pathgrad"], r["prb"]
        lines.append(
            f"{r['case']:<14}{r['spp']:>5} | {a['image_rel_error']:>10.4f}{b['image_rel_error']:>8.4f}"
            f" | {a['reverse_rel_error']:>10.4f}{b['reverse_rel_error']:>8.4f}"
            f" | {a['seconds']:>7.3f}{b['seconds']:>7.3f}{a['seconds'] / b['seconds']:>7.2f}"
            f" | {a['peak_mib']:>7.1f}{b['peak_mib']:>7.1f}{a['peak_mib'] / b['peak_mib']:>7.2f}")
    table = "\n".join(lines)
    print(table)
    os.makedirs(args.out, exist_ok=True)
    meta = {"variant": mi.variant(), "mitsuba": mi.__version__, "drjit": dr.__version__,
            "machine": platform.machine(), "cpus": os.cpu_count(), "res": args.res,
            "fd_spp": args.fd_spp, "fd_seeds": args.fd_seeds,
            "date": time.strftime("%Y-%m-%d %H:%M:%S")}
    with open(os.path.join(args.out, "interior.json"), "w") as fh:
        json.dump({"meta": meta, "rows": rows}, fh, indent=1)
    with open(os.path.join(args.out, "interior.txt"), "w") as fh:
        fh.write(table + "\n")
    return rows


if __name__ == "__main__":
    main()
