"""Benchmark: pathgrad's primary-visibility boundary term against Mitsuba's
``prb_projective``, on the scenes of ``tests/test_boundary_primary.py``.

Mitsuba runs with its default settings, and with its indirect
discontinuity term off (``sppi=0``) since these scenes only have primary
visibility changes. In the same process:

* **equal spp**: every integrator at ``--spp`` samples per pixel;
* **equal time**: pathgrad at the largest power-of-two spp whose time does
  not exceed each Mitsuba configuration's time at ``--spp``.

Errors are relative L2 errors of the gradient image (with the reference's own
noise, measured from its spread over seeds, removed in quadrature) and of a
reverse-mode functional against a high-spp finite-difference reference;
seconds are per ``render`` + ``dr.backward``; memory is Dr.Jit's peak
allocation.

    python benchmarks/primary.py [--res 48] [--spp 16]

Writes ``benchmarks/results/primary.{json,txt}``.
"""
from __future__ import annotations

import os
import sys

import mitsuba as mi
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import pathgrad  # noqa: E402
from pathgrad.scenes import diffuse, object_scene  # noqa: E402
from pathgrad.shapes import icosphere, icosphere_arrays, mesh_from_arrays  # noqa: E402
from harness import compare, parse_args  # noqa: E402


def cases(res):
    T = mi.ScalarTransform4f
    out = []
    ball = lambda **kw: icosphere(3, 0.8, name="ball", smooth=False, bsdf=diffuse(0.2), **kw)  # noqa: E731
    out.append(("sphere translate", object_scene({"ball": ball()}, res=res),
                "ball.vertex_positions", 0.0025, [1, 0.4, 0]))
    v, _ = icosphere_arrays(3)
    out.append(("sphere scale", object_scene({"ball": ball()}, res=res),
                "ball.vertex_positions", 0.0025, v.ravel()))
    quad = mesh_from_arrays("quad", np.array([[-0.6, -0.4, 0], [0.6, -0.4, 0], [0.6, 0.4, 0],
                                              [-0.6, 0.4, 0]]), np.array([[0, 1, 2], [0, 2, 3]]),
                            smooth=False, emitter={"type": "area", "radiance": {"type": "rgb", "value": [4, 3, 2]}})
    out.append(("emitting quad", object_scene({"quad": quad}, env=None, max_depth=1, res=res),
                "quad.vertex_positions", 0.0025, [1, -0.5, 0]))
    sc = object_scene({"ball": icosphere(2, 0.8, name="ball", smooth=False, bsdf=diffuse(0.5))},
                      lights={"sun": {"type": "directional", "direction": [-1, -1, -1],
                                      "irradiance": {"type": "rgb", "value": 2}}}, env=0.3, res=res)
    n = len(np.array(mi.traverse(sc)["ball.vertex_positions"])) // 3
    out.append(("displacement", sc, "ball.vertex_positions", 0.0015,
                np.random.default_rng(3).normal(size=(n, 3)).ravel()))
    cube = {"type": "cube", "to_world": T().rotate([1, 1, 0], 35).scale(0.6), "bsdf": diffuse(0.3)}
    sc = object_scene({"cube": cube}, lights={"sun": {"type": "directional", "direction": [-0.3, -1, -0.6],
                                                      "irradiance": {"type": "rgb", "value": 3}}},
                      env=0.5, res=res)
    key = [k for k in mi.traverse(sc).keys() if k.endswith("vertex_positions")][0]
    out.append(("split cube", sc, key, 0.0025, [1, 0.5, 0]))
    box = {"type": "cube", "to_world": T().translate([0.9, 0, 1.2]).scale([0.5, 1.5, 0.1]),
           "bsdf": diffuse(0.8, 0.5, 0.2)}
    out.append(("occluded", object_scene({"ball": ball(), "box": box}, res=res),
                "ball.vertex_positions", 0.0025, [1, 0, 0]))
    return out


def main(argv=None):
    args = parse_args(__doc__, argv, spp=16, repeats=5, fd_spp=16384)

    def make_pathgrad(scene):
        # these scenes have primary visibility changes only: like Mitsuba's
        # sppi=0 configuration, leave the shadow term out
        return pathgrad.make_integrator(max_depth=scene.integrator().max_depth, shadow=False)

    def make_mitsuba(scene):
        depth = scene.integrator().max_depth
        return {"prb_projective": mi.load_dict({"type": "prb_projective", "max_depth": depth}),
                "prb_projective sppi=0": mi.load_dict({"type": "prb_projective",
                                                       "max_depth": depth, "sppi": 0})}

    return compare(cases(args.res), make_pathgrad, make_mitsuba, spp=args.spp,
                   repeats=args.repeats, fd_spp=args.fd_spp, fd_seeds=args.fd_seeds,
                   out_name="primary", res=args.res, only=args.cases)


if __name__ == "__main__":
    main()
