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

import os
import sys

import mitsuba as mi

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import pathgrad  # noqa: E402
from harness import SCENES, Problem, meta, parse_args, save_results  # noqa: E402

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
    args = parse_args(__doc__, argv, spp=[16, 64], spp_list=True, repeats=5, fd_spp=1024,
                      fd_seeds=4)

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
    save_results("interior", table, meta(res=args.res, fd_spp=args.fd_spp,
                                         fd_seeds=args.fd_seeds), rows)
    return rows


if __name__ == "__main__":
    main()
