"""Material and lighting estimation in a closed box, with global illumination.

In the spirit of inverse path tracing: the Cornell box of scenes/cbox.xml
(white, red and green walls, a ceiling area light, a box and a plastic ball) is
rendered once with its true materials as the target. Starting from grey walls
and a dim light, the three wall albedos (RGB each) and the light's radiance
(RGB) are recovered by gradient descent through pathgrad. Light reaches most
of the box after one or more bounces, so the gradients are those of the full
path-traced image (max depth 6), not of direct lighting alone.

    python examples/materials_lighting.py                # 96 px, 300 steps, ~30 s
    python examples/materials_lighting.py --fast         # what the tests run

Writes to --out (default out/materials_lighting):
  comparison.png   target, initial and final renders side by side
  loss.png         image loss and parameter error per step
  results.json     the recovered and true values, errors, timings
  final.exr        the final render (linear)
"""
from __future__ import annotations

import os
import sys

import drjit as dr
import mitsuba as mi
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _common  # noqa: E402

import pathgrad  # noqa: E402
from pathgrad.imageio_utils import write_exr  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
SCENE = os.path.join(HERE, "..", "scenes", "cbox.xml")

ALBEDOS = ["white.reflectance.value", "red.reflectance.value", "green.reflectance.value"]
RADIANCE = "light.emitter.radiance.value"


def param_error(values: dict, truth: dict) -> float:
    """Mean over the four parameters of |θ - θ*| / |θ*| (RGB vector norms)."""
    return float(np.mean([np.linalg.norm(values[k] - truth[k]) / np.linalg.norm(truth[k])
                          for k in truth]))


def main(argv=None) -> dict:
    args = _common.parse_args(
        __doc__, argv,
        full=dict(iters=300, spp=8, res=96, lr=0.03),
        fast=dict(iters=150, spp=4, res=24, lr=0.03),
        extra=lambda ap: ap.add_argument("--target-spp", type=int, default=256,
                                         help="samples per pixel of the target image (default 256)"))
    scene = pathgrad.load_scene(SCENE, res=args.res)
    params = pathgrad.parameters(scene, ALBEDOS + [RADIANCE])
    truth = {k: np.array(params[k]).ravel().astype(float) for k in ALBEDOS + [RADIANCE]}
    target = pathgrad.render(scene, spp=args.target_spp, seed=10**6 + args.seed)

    # Latent variables: albedos directly (clamped to [0, 0.95]), the radiance
    # through its logarithm so that one learning rate suits both scales.
    opt = mi.ad.Adam(lr=args.lr)
    for k in ALBEDOS:
        opt[k] = mi.Color3f(0.5)
    opt["log_radiance"] = mi.Color3f(np.log(3.0))

    def apply():
        for k in ALBEDOS:
            opt[k] = dr.clip(opt[k], 0.0, 0.95)
            params[k] = opt[k]
        params[RADIANCE] = dr.exp(opt["log_radiance"])
        params.update()

    def current() -> dict:
        return {k: np.array(dr.detach(params[k])).ravel().astype(float) for k in truth}

    run = _common.Run("materials_lighting", args, total=args.iters)
    apply()
    initial = pathgrad.render(scene, spp=args.target_spp, seed=10**6 + args.seed)
    first_values = current()
    for it in range(args.iters):
        opt.set_learning_rate(_common.learning_rate(args.lr, it, args.iters))
        img = pathgrad.render(scene, params, spp=args.spp, seed=args.seed * 100003 + it)
        loss = dr.mean(dr.square(img - target), axis=None)
        dr.backward(loss)
        opt.step()
        apply()
        run.log(loss, param_error(current(), truth))

    final = pathgrad.render(scene, spp=args.target_spp, seed=10**6 + args.seed)
    write_exr(run.path("final.exr"), final)
    values = current()
    return run.finish(
        [[target, initial, final]],
        results={"true": truth, "initial": first_values, "recovered": values,
                 "param_error_start": param_error(first_values, truth),
                 "per_parameter_error": {k: float(np.linalg.norm(values[k] - truth[k]) /
                                                  np.linalg.norm(truth[k])) for k in truth}},
        param_label="mean relative parameter error")


if __name__ == "__main__":
    main()
