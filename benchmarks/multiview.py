"""Multi-view optimisation steps: seconds per step against views and workers,
frozen and unfrozen, the bytes a step sends, and a projection to N machines.

Problems (``pathgrad.scenes.multiview_scene``: a 162-vertex sphere under a
sky, views on a Fibonacci sphere, ``--res`` px, ``--spp`` spp, L2 loss, Adam):

- ``albedo``: the RGB albedo (``shape.bsdf.reflectance.value``); frozen
  steps apply (``frozen=True``) and are compared with unfrozen ones;
- ``shape``: the vertex positions (486 floats); geometry, so unfrozen only
  (see ``pathgrad.views``).

Settings: views in ``--views`` (default 1 4 16 64); workers 0 (every view
in this process, 2 Dr.Jit threads), 1 (one Ray actor with 2 CPUs) and 2 (two
actors with 1 CPU each) on a local Ray cluster. Each setting runs
``--warmup`` steps (kernel compilation; for frozen steps the recording and
its two checks against unfrozen steps),
then ``--steps`` timed steps, each setting in a fresh process (with its
own Ray cluster when it has workers: a long-lived process slowed later
settings by up to 30%); the median is reported, with views per second, and
the bytes broadcast (parameter arrays) and reduced (gradients) per step.

``--examples`` also times steps on the scenes of two shipped examples, in
one process: ``materials_lighting.py`` (the Cornell box's albedos and light
radiance, one 24 px view at 4 spp), frozen against unfrozen; and
``texture_recovery.py`` (a 32x32 texture from 3 views of 64 px at 4 spp),
unfrozen only: textures cannot be frozen (``pathgrad.views``).

From the one-actor rows: t(V, N) = t_0 + ceil(V / N) t_view + bytes(N) / bandwidth,
a projection for N machines like this one (one actor each) on a network
of ``--bandwidth`` GB/s, written below the table.

    python benchmarks/multiview.py [--views 1 4 16 64] [--res 32] [--spp 4] [--examples]

Results: benchmarks/results/multiview.json and multiview.txt.
"""
from __future__ import annotations

import argparse
import functools
import json
import math
import subprocess
import os
import statistics
import sys

import drjit as dr
import mitsuba as mi
import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "..", "examples"))

import pathgrad  # noqa: E402
from pathgrad import scenes, shapes  # noqa: E402
from harness import meta, save_results  # noqa: E402

ALBEDO = "shape.bsdf.reflectance.value"
KEY = "shape.vertex_positions"


def blob_problem(views: int, res: int, spp: int, kind: str, workers: int, frozen: bool,
                 targets_cache: dict):
    v, f = shapes.icosphere_arrays(2)
    v = 0.7 * v
    source = functools.partial(scenes.multiview_scene, v, f, views=views, res=res)
    key = (views, res)
    if key not in targets_cache:
        truth = scenes.multiview_scene(v * np.array([1.15, 1.0, 0.9]), f, views=views, res=res,
                                       albedo=(0.75, 0.45, 0.25))
        targets_cache[key] = [np.array(pathgrad.render(truth, spp=16, seed=i, sensor=i))
                              for i in range(views)]
    variables = {ALBEDO: mi.Color3f(0.5)} if kind == "albedo" else \
        {KEY: mi.Float(v.astype(np.float32).ravel())}
    return pathgrad.MultiViewProblem(source if workers else source(), targets_cache[key],
                                     variables, spp=spp, lr=0.01, seed=1, workers=workers,
                                     worker_cpus=2.0 if workers == 1 else 1.0,
                                     frozen=frozen, progress=False)


def time_steps(problem, warmup: int, steps: int) -> float:
    for _ in range(warmup):
        problem.step()
    for _ in range(steps):
        problem.step()
    return statistics.median(problem.step_seconds[warmup:])


def example_problems():
    """(name, factory(frozen), freezable) for the shipped examples' scenes."""
    import materials_lighting as ml
    import texture_recovery as tr

    def texture(frozen):
        n = 32
        scene_t = tr.make_scene(tr.target_texture(n), 64, views=3)
        targets = [np.array(pathgrad.render(scene_t, spp=64, seed=i, sensor=i)) for i in range(3)]
        scene = tr.make_scene(np.full((n, n, 3), 0.5, np.float32), 64, views=3)
        return pathgrad.MultiViewProblem(scene, targets,
                                         {tr.KEY: mi.TensorXf(np.full((n, n, 3), 0.5, np.float32))},
                                         spp=4, lr=0.02, frozen=frozen, progress=False)

    def cbox(frozen):
        scene = pathgrad.load_scene(ml.SCENE, res=24)
        target = [np.array(pathgrad.render(scene, spp=64, seed=3))]
        keys = ml.ALBEDOS + [ml.RADIANCE]
        init = {k: mi.Color3f(0.5) for k in ml.ALBEDOS}
        init[ml.RADIANCE] = mi.Color3f(3.0)
        return pathgrad.MultiViewProblem(scene, target, {k: init[k] for k in keys}, spp=4,
                                         lr=0.02, frozen=frozen, progress=False)
    return [("materials_lighting", cbox, True), ("texture_recovery", texture, False)]


def projection(rows, bandwidth_gbs: float, views_list=(64, 256, 1024)) -> str:
    """Fit t = t_0 + V t_view to the one-actor rows (shape problem, unfrozen:
    the heaviest) and project seconds per step for N machines."""
    one = [r for r in rows if r["problem"] == "shape" and r["workers"] == 1]
    if len(one) < 2:
        return ""
    V = np.array([r["views"] for r in one], float)
    t = np.array([r["seconds_per_step"] for r in one])
    t_view, t0 = np.polyfit(V, t, 1)
    b = one[-1]["broadcast_bytes"]
    rb = one[-1]["reduce_bytes"] / max(one[-1]["workers"], 1)
    lines = [f"projection (shape problem, unfrozen, fit to the one-actor rows): "
             f"t_0 = {t0:.3f} s, t_view = {t_view:.4f} s, broadcast {b} B, reduce {rb:.0f} B "
             f"per worker, network {bandwidth_gbs} GB/s",
             "| views | " + " | ".join(f"N={n}" for n in (1, 2, 4, 8, 16, 64)) + " |",
             "|---|" + "---|" * 6]
    for V_ in views_list:
        cells = []
        for n in (1, 2, 4, 8, 16, 64):
            comm = (b * n + rb * n) / (bandwidth_gbs * 1e9)   # star: send to and from each
            cells.append(f"{max(t0, 0) + math.ceil(V_ / n) * t_view + comm:.2f} s")
        lines.append(f"| {V_} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def run_one(cfg: dict) -> dict:
    """One setting, in this process (the child of :func:`main`)."""
    if cfg.get("workers"):
        import ray
        os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
        ray.init(num_cpus=2, _node_ip_address="127.0.0.1", include_dashboard=False,
                 log_to_driver=False)
    if "example" in cfg:
        make = {name: f for name, f, _ in example_problems()}[cfg["example"]]
        p = make(cfg["frozen"])
        s = time_steps(p, cfg["warmup"], cfg["steps"] + 2)
        return {"example": cfg["example"], "frozen": cfg["frozen"], "seconds_per_step": s}
    p = blob_problem(cfg["views"], cfg["res"], cfg["spp"], cfg["problem"], cfg["workers"],
                     cfg["frozen"], {})
    s = time_steps(p, cfg["warmup"], cfg["steps"])
    row = {k: cfg[k] for k in ("problem", "views", "workers", "frozen")}
    row.update(seconds_per_step=s, views_per_second=cfg["views"] / s,
               broadcast_bytes=getattr(p.renderer, "broadcast_bytes", 0),
               reduce_bytes=getattr(p.renderer, "reduce_bytes", 0))
    p.close()
    return row


def in_child(cfg: dict) -> dict:
    out = subprocess.run([sys.executable, os.path.abspath(__file__), "--one", json.dumps(cfg)],
                         capture_output=True, text=True)
    for line in out.stdout.splitlines():
        if line.startswith("RESULT "):
            return json.loads(line[len("RESULT "):])
    raise RuntimeError(f"setting {cfg} failed:\n{out.stdout[-2000:]}\n{out.stderr[-4000:]}")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--views", type=int, nargs="+", default=[1, 4, 16, 64])
    ap.add_argument("--res", type=int, default=32)
    ap.add_argument("--spp", type=int, default=4)
    ap.add_argument("--workers", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--warmup", type=int, default=3,
                    help="untimed steps (default 3: compilation; a frozen step's recording and its two checks)")
    ap.add_argument("--steps", type=int, default=3)
    ap.add_argument("--bandwidth", type=float, default=1.25, help="GB/s (default 1.25: 10 Gb/s)")
    ap.add_argument("--examples", action="store_true",
                    help="also frozen vs unfrozen on two shipped examples' scenes")
    ap.add_argument("--one", help=argparse.SUPPRESS)   # (a child: one setting, as JSON)
    args = ap.parse_args(argv)
    if args.one:
        print("RESULT " + json.dumps(run_one(json.loads(args.one))), flush=True)
        return
    common = {"res": args.res, "spp": args.spp, "warmup": args.warmup, "steps": args.steps}
    rows = []
    for views in args.views:
        for kind, frozen in (("albedo", False), ("albedo", True), ("shape", False)):
            for workers in args.workers:
                rows.append(in_child({"problem": kind, "views": views, "workers": workers,
                                      "frozen": frozen, **common}))
                print(rows[-1], flush=True)
    ex_rows = []
    if args.examples:
        for name, make, freezable in example_problems():
            for frozen in (False, True) if freezable else (False,):
                ex_rows.append(in_child({"example": name, "frozen": frozen, **common}))
                print(ex_rows[-1], flush=True)
    table = ["| problem | views | workers | frozen | s/step | views/s | broadcast B | reduce B |",
             "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        table.append(f"| {r['problem']} | {r['views']} | {r['workers'] or 'in-process'} | "
                     f"{'yes' if r['frozen'] else 'no'} | {r['seconds_per_step']:.3f} | "
                     f"{r['views_per_second']:.1f} | {r['broadcast_bytes']} | {r['reduce_bytes']} |")
    if ex_rows:
        table += ["", "| example scene | unfrozen s/step | frozen s/step | speed-up |",
                  "|---|---|---|---|"]
        for name in dict.fromkeys(r["example"] for r in ex_rows):
            t = [r["seconds_per_step"] for r in ex_rows if r["example"] == name]
            if len(t) == 2:
                table.append(f"| {name} | {t[0]:.3f} | {t[1]:.3f} | {t[0] / t[1]:.1f}x |")
            else:
                table.append(f"| {name} | {t[0]:.3f} | (not freezable: a texture) | |")
    table.append("")
    table.append(projection(rows, args.bandwidth))
    text = "\n".join(table)
    print(text)
    save_results("multiview", text, meta(res=args.res, spp=args.spp),
                 {"steps": rows, "examples": ex_rows})


if __name__ == "__main__":
    main()
