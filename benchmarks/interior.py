"""Benchmark: pathgrad's interior estimator against Mitsuba's ``prb``.

For each material/light scene and parameter, in the same process and at the
same spp: relative error of the gradient image and of a reverse-mode
functional against a high-spp finite-difference reference, median seconds
per ``render`` + ``dr.backward``, and Dr.Jit's peak allocation during one
backward pass (see ``harness.py``).

    python benchmarks/interior.py [--res 48] [--spp 16 64] [--repeats 5]

Prints a table (with ratios pathgrad / prb) and writes
``benchmarks/results/interior.{json,txt}``.
"""
from __future__ import annotations

import argparse
import json
import os
import sys

import mitsuba as mi

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import pathgrad  # noqa: E402
from harness import RESULTS, SCENES, Problem, meta  # noqa: E402

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


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--res", type=int, default=48)
    ap.add_argument("--spp", type=int, nargs="+", default=[16, 64])
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--fd-spp", type=int, default=1024)
    ap.add_argument("--fd-seeds", type=int, default=4)
    ap.add_argument("--cases", nargs="*", help="subset of case names")
    args = ap.parse_args(argv)

    rows = []
    for name, fname, key, eps in CASES:
        if args.cases and name not in args.cases:
            continue
        print(f"... {name}", file=sys.stderr, flush=True)
        scene = pathgrad.load_scene(os.path.join(SCENES, fname), res=args.res)
        depth = scene.integrator().max_depth
        prob = Problem(name, scene, key, eps)
        prob.fd_reference(args.fd_spp, args.fd_seeds)
        integrators = {"pathgrad": pathgrad.make_integrator(max_depth=depth),
                       "prb": mi.load_dict({"type": "prb", "max_depth": depth})}
        for spp in args.spp:
            row = {"case": name, "key": key, "spp": spp}
            for label, integ in integrators.items():
                row[label] = prob.measure(integ, spp, args.repeats)
            rows.append(row)

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
    os.makedirs(RESULTS, exist_ok=True)
    with open(os.path.join(RESULTS, "interior.json"), "w") as fh:
        json.dump({"meta": meta(res=args.res, fd_spp=args.fd_spp, fd_seeds=args.fd_seeds),
                   "rows": rows}, fh, indent=1)
    with open(os.path.join(RESULTS, "interior.txt"), "w") as fh:
        fh.write(table + "\n")
    return rows


if __name__ == "__main__":
    main()
