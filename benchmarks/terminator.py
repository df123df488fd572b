"""Benchmark: geometry gradients of smooth-shaded meshes (where the shading
terminator is a discontinuity of its own) against Mitsuba's
``prb_projective`` and ``direct_projective``, each with its default guiding
and with ``guiding='none'``, on the meshes of ``tests/test_terminator.py``.

In the same process, for every case:

* **equal spp**: every integrator at ``--spp`` samples per pixel;
* **equal time**: pathgrad at the largest power-of-two spp whose time does
  not exceed each Mitsuba configuration's time at ``--spp``;
* **bias**: with ``--bias-spp N``, every integrator's image error again at
  N spp (a biased estimator's error stops falling with spp; an unbiased
  one's falls as 1/sqrt(spp)).

Errors are relative L2 errors of the gradient image (the reference's own
noise removed in quadrature) and of a reverse-mode functional, against a
high-spp finite-difference reference of pathgrad's primal (Mitsuba's
``path`` image model); seconds per ``render`` + ``dr.backward``.

    python benchmarks/terminator.py [--res 48] [--spp 16] [--bias-spp 128] [--bias-only]

Writes ``benchmarks/results/terminator.{json,txt}``.
"""
from __future__ import annotations

import os
import sys

import mitsuba as mi
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                                "tests"))
import pathgrad  # noqa: E402
from pathgrad.scenes import diffuse, object_scene  # noqa: E402
from pathgrad.shapes import icosphere, mesh_from_arrays, uv_sphere  # noqa: E402
from harness import Problem, compare, parse_args, save_results, meta  # noqa: E402
from test_terminator import area_light, bumpy_sphere, point_light, swirl  # noqa: E402


def cases(res):
    out = []
    key = "ball.vertex_positions"
    sc = object_scene({"ball": uv_sphere(24, 48, 0.6, name="ball", bsdf=diffuse(0.5))},
                      lights=area_light(), res=res)
    out.append(("uv 24x48 translate", sc, key, 0.0025, [1, 0, 0]))
    sc = object_scene({"ball": icosphere(3, 0.6, name="ball", bsdf=diffuse(0.5))},
                      lights=area_light(), env=None, res=res)
    out.append(("ico 642 translate", sc, key, 0.0025, [1, 0.4, 0]))
    v, f = bumpy_sphere(level=3)
    sc = object_scene({"ball": mesh_from_arrays("ball", v, f, bsdf=diffuse(0.5))},
                      lights=point_light(), env=1.0, res=res)
    d = swirl(np.array(mi.traverse(sc)[key]).reshape(-1, 3)).ravel()
    out.append(("bumpy 642 deform", sc, key, 0.002, d))
    em = {"type": "area", "radiance": {"type": "rgb", "value": 2}}
    sc = object_scene({"ball": uv_sphere(12, 24, 0.6, name="ball", emitter=em)}, env=None,
                      max_depth=1, res=res)
    out.append(("emitting uv 12x24", sc, key, 0.0025, [1, -0.5, 0]))
    sc = object_scene({"ball": uv_sphere(96, 192, 0.6, name="ball", bsdf=diffuse(0.5))},
                      lights=area_light(), res=res)
    out.append(("uv 96x192 translate", sc, key, 0.0025, [1, 0, 0]))
    return out


def mitsuba_integrators(scene) -> dict:
    depth = scene.integrator().max_depth
    out = {}
    for kind in ("prb_projective", "direct_projective"):
        out[kind] = mi.load_dict({"type": kind, "max_depth": depth})
        out[kind + " unguided"] = mi.load_dict({"type": kind, "max_depth": depth,
                                                "guiding": "none"})
    return out


def bias_table(all_cases, make_pathgrad, spp, fd_spp, fd_seeds, res, only=None):
    """Image error of every integrator at a high spp (bias shows as an error
    that stays where it was at low spp)."""
    rows = []
    for name, scene, key, eps, direction in all_cases:
        if only and name not in only:
            continue
        prob = Problem(name, scene, key, eps, direction)
        prob.fd_reference(fd_spp, fd_seeds)
        row = {"case": name, "spp": spp, "ref_noise": prob.ref_noise,
               "pathgrad": prob.errors(make_pathgrad(scene), spp)}
        for label, integ in mitsuba_integrators(scene).items():
            row[label] = prob.errors(integ, spp)
        rows.append(row)
        print(row, file=sys.stderr, flush=True)
    labels = [k for k in rows[0] if k not in ("case", "spp", "ref_noise")]
    lines = [f"image / reverse error at {spp} spp (FD reference noise in brackets)",
             f"{'case':<22}" + "".join(f"{lb:>27}" for lb in labels)]
    for r in rows:
        lines.append(f"{r['case'] + ' (' + format(r['ref_noise'], '.3f') + ')':<22}" + "".join(
            f"{r[lb]['image_rel_error']:>18.3f} / {r[lb]['reverse_rel_error']:.3f}"
            for lb in labels))
    table = "\n".join(lines)
    print(table)
    save_results("terminator_bias", table, meta(res=res, fd_spp=fd_spp, fd_seeds=fd_seeds,
                                               spp=spp), rows)


def main(argv=None):
    import argparse
    pre = argparse.ArgumentParser(add_help=False)
    pre.add_argument("--bias-spp", type=int, default=0,
                     help="also measure every integrator's error at this spp (bias check)")
    pre.add_argument("--bias-only", action="store_true", help="skip the equal-spp/time table")
    extra, rest = pre.parse_known_args(argv)
    args = parse_args(__doc__, rest, spp=16, repeats=3, fd_spp=4096)

    def make_pathgrad(scene):
        return pathgrad.make_integrator(max_depth=scene.integrator().max_depth)

    rows = None
    if not extra.bias_only:
        rows = compare(cases(args.res), make_pathgrad, mitsuba_integrators, spp=args.spp,
                       repeats=args.repeats, fd_spp=args.fd_spp, fd_seeds=args.fd_seeds,
                       out_name="terminator", res=args.res, only=args.cases)
    if extra.bias_spp:
        bias_table(cases(args.res), make_pathgrad, extra.bias_spp, args.fd_spp,
                   args.fd_seeds, args.res, only=args.cases)
    return rows


if __name__ == "__main__":
    main()
