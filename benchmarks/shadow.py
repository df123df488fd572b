"""Benchmark: pathgrad's shadow boundary terms against Mitsuba's
``direct_projective`` and ``prb_projective`` (default, guided settings, and
``guiding='none'`` as in Mitsuba's own tutorials), on the scenes of
``tests/test_boundary_shadow.py`` (48x48 by default).

In the same process: every integrator at equal spp, and pathgrad at the
largest power-of-two spp whose time stays within each Mitsuba integrator's
time (equal time). Errors: relative L2 error of the gradient image (FD
reference noise removed in quadrature) and of a reverse-mode functional;
seconds per ``render`` + ``dr.backward``; Dr.Jit peak memory.

    python benchmarks/shadow.py [--res 48] [--spp 64]

Writes ``benchmarks/results/shadow.{json,txt}``.
"""
from __future__ import annotations

import os
import sys

import mitsuba as mi

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import pathgrad  # noqa: E402
from pathgrad.scenes import shadow_scene  # noqa: E402
from harness import compare, parse_args  # noqa: E402


def cases(res):
    return [
        ("occluder (area)", shadow_scene("area", res=res), "occ.vertex_positions", 0.002, [1, 0, 0.5]),
        ("receiver (area)", shadow_scene("area", res=res), "floor.vertex_positions", 0.002, [0, 1, 0]),
        ("light moved", shadow_scene("area", res=res), "light.vertex_positions", 0.002, [1, 0, 0.3]),
        ("wall on floor", shadow_scene("area", wall=True, res=res), "wall.vertex_positions", 0.002,
         [1, 0, 0.2]),
        ("occluder (point)", shadow_scene("point", res=res), "occ.vertex_positions", 0.001,
         [1, 0, 0.5]),
        ("occluder (env)", shadow_scene("env", res=res), "occ.vertex_positions", 0.001, [1, 0, 0.5]),
    ]


def main(argv=None):
    args = parse_args(__doc__, argv, spp=64, repeats=3, fd_spp=8192)

    def make_pathgrad(scene):
        return pathgrad.make_integrator(max_depth=scene.integrator().max_depth)

    def make_mitsuba(scene):
        depth = scene.integrator().max_depth
        return {"direct_projective": mi.load_dict({"type": "direct_projective"}),
                "direct_projective unguided": mi.load_dict({"type": "direct_projective",
                                                            "guiding": "none"}),
                "prb_projective": mi.load_dict({"type": "prb_projective", "max_depth": depth}),
                "prb_projective unguided": mi.load_dict({"type": "prb_projective",
                                                         "max_depth": depth, "guiding": "none"})}

    return compare(cases(args.res), make_pathgrad, make_mitsuba, spp=args.spp,
                   repeats=args.repeats, fd_spp=args.fd_spp, fd_seeds=args.fd_seeds,
                   out_name="shadow", res=args.res, only=args.cases)


if __name__ == "__main__":
    main()
