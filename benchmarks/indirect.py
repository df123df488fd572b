"""Benchmark: pathgrad's indirect-visibility boundary term (silhouettes seen
from path vertices) against Mitsuba's ``prb_projective`` with its default
(guided) settings and with ``guiding='none'``, on the scenes of
``tests/test_boundary_indirect.py`` and ``tests/test_boundary_indirect_delta.py``
(48x48 by default).

In the same process: every integrator at equal spp, and pathgrad at the
largest power-of-two spp whose time stays within each Mitsuba setting's time
(equal time). Errors: relative L2 error of the gradient image (FD reference
noise removed in quadrature) and of a reverse-mode functional; seconds per
``render`` + ``dr.backward``; Dr.Jit peak memory.

    python benchmarks/indirect.py [--res 48] [--spp 64]

Writes ``benchmarks/results/indirect.{json,txt}``.
"""
from __future__ import annotations

import os
import sys

import mitsuba as mi

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import pathgrad  # noqa: E402
from pathgrad.scenes import indirect_scene  # noqa: E402
from harness import compare, parse_args  # noqa: E402


#: (kind, light, FD step): the silhouette scenes, then the delta-light
#: shadows seen after a bounce (``tests/test_boundary_indirect_delta.py``)
CASES = (("bounce", None, 0.01), ("box", None, 0.003), ("glossy", None, 0.004),
         ("glossy_point", "point", 0.01), ("box", "point", 0.003))


def cases(res):
    out = []
    for kind, light, eps in CASES:
        depth = indirect_scene(kind, res=8, light=light).integrator().max_depth
        name = f"{kind}{'' if light is None or kind != 'box' else ' ' + light} (depth {depth})"
        out.append((name, indirect_scene(kind, res=res, light=light), "occ.vertex_positions",
                    eps, [1, 0, 0.5]))
    return out


def main(argv=None):
    args = parse_args(__doc__, argv, spp=64, repeats=3, fd_spp=16384)

    def make_pathgrad(scene):
        return pathgrad.make_integrator(max_depth=scene.integrator().max_depth)

    def make_mitsuba(scene):
        depth = scene.integrator().max_depth
        return {"prb_projective": mi.load_dict({"type": "prb_projective", "max_depth": depth}),
                "prb_projective unguided": mi.load_dict({"type": "prb_projective",
                                                         "max_depth": depth, "guiding": "none"})}

    return compare(cases(args.res), make_pathgrad, make_mitsuba, spp=args.spp,
                   repeats=args.repeats, fd_spp=args.fd_spp, fd_seeds=args.fd_seeds,
                   out_name="indirect", res=args.res, only=args.cases)


if __name__ == "__main__":
    main()
