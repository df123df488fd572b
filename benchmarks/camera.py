"""Benchmark: gradients with respect to a camera's pose and field of view and
to the ``to_world`` of Mitsuba's analytic shapes, with and without the
boundary (visibility) term.

On ``pathgrad.scenes.camera_scene`` (floor, box, icosphere and a mesh area
light; the analytic sphere, disk or rectangle is seen directly and casts a
shadow), for each case, in the same process and at the same spp:

* ``interior only``: pathgrad with ``boundary=False``, the gradient a
  renderer without a visibility term gives;
* ``pathgrad``: pathgrad's full gradient (interior + boundary terms);
* Mitsuba's ``prb`` (interior only), ``prb_projective`` and
  ``direct_projective`` (default settings) where Mitsuba can differentiate
  the key: it flags a sensor's ``to_world`` and ``x_fov`` non-differentiable
  (reported ``n/a``); an integrator that fails is reported with its error.

Errors, as in ``harness.py``: relative L2 error of the forward-mode gradient
image against central finite differences (common random numbers, mean over
seeds; the reference's own noise, printed as ``FD noise``, removed in
quadrature) and of a reverse-mode functional ⟨∂θ⟨w, I⟩, v⟩; seconds per
``render`` + ``dr.backward``; Dr.Jit's peak memory. Ratios are against the
interior-only gradient (image error, seconds).

A transform moves along a pose direction (``pathgrad.poses``): θ(s) =
``poses.moved(θ₀, s, v)``, so ε and the gradients are per unit of s (scene
units, degrees, or relative scale); the field of view moves by s degrees.

    python benchmarks/camera.py [--res 32] [--spp 32] [--quick]

``--quick``: a smoke run (16x16, 8 spp, FD reference 256 spp x 4 seeds,
errors of one gradient seed, one timing repeat; Mitsuba's projective
integrators, several seconds per call, on the first analytic case only) that
checks the script end to end; its numbers are not meaningful. 1.5-3 min
with Dr.Jit's kernel cache warm, 5-6 min cold (2-core machine, shared).
Writes ``benchmarks/results/camera.{json,txt}``.
"""
from __future__ import annotations

import argparse
import os
import sys
import time

import drjit as dr
import mitsuba as mi
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import pathgrad  # noqa: E402
from pathgrad import poses  # noqa: E402
from pathgrad.gradcheck import _direction_like  # noqa: E402
from pathgrad.integrator import integrator_class  # noqa: E402
from pathgrad.scenes import camera_scene  # noqa: E402
from harness import Problem, meta, save_results  # noqa: E402

#: (name, sensor, analytic, key, eps, direction); eps moves the edges in view
#: by about 0.03-0.08 pixel at 32x32
CASES = [
    ("camera translate", "perspective", None, "sensor.to_world", 0.005, {"translate": [1, 0, 0]}),
    ("camera rotate", "perspective", None, "sensor.to_world", 0.1, {"rotate": [0, 1, 0]}),
    ("field of view", "perspective", None, "sensor.x_fov", 0.1, 1.0),
    ("ortho translate", "orthographic", None, "sensor.to_world", 0.005, {"translate": [1, 0, 0]}),
    ("ortho rotate", "orthographic", None, "sensor.to_world", 0.1, {"rotate": [0, 1, 0]}),
    ("sphere translate", "perspective", "sphere", "analytic.to_world", 0.004,
     {"translate": [1, 0, 0.5]}),
    ("sphere scale", "perspective", "sphere", "analytic.to_world", 0.02, {"scale": 1}),
    ("disk translate", "perspective", "disk", "analytic.to_world", 0.004,
     {"translate": [1, 0, 0.5]}),
    ("disk rotate", "perspective", "disk", "analytic.to_world", 1.0, {"rotate": [0, 0, 1]}),
    ("rectangle translate", "perspective", "rectangle", "analytic.to_world", 0.004,
     {"translate": [1, 0, 0.5]}),
]

MITSUBA = ("prb", "prb_projective", "direct_projective")

#: defaults of the full run and of --quick
DEFAULTS = {"res": 32, "spp": 32, "repeats": 3, "fd_spp": 4096, "fd_seeds": 8, "error_seeds": 3}
QUICK = {"res": 16, "spp": 8, "repeats": 1, "fd_spp": 256, "fd_seeds": 4, "error_seeds": 1}


def parse_args(argv=None):
    """harness.parse_args's flags plus ``--quick`` (which changes the
    defaults of the flags not given)."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--res", type=int, help=f"image width = height (default {DEFAULTS['res']})")
    ap.add_argument("--spp", type=int, help=f"samples per pixel (default {DEFAULTS['spp']})")
    ap.add_argument("--repeats", type=int,
                    help=f"timing repetitions, median taken (default {DEFAULTS['repeats']})")
    ap.add_argument("--fd-spp", type=int, help="samples per pixel of the finite-difference "
                                                f"reference (default {DEFAULTS['fd_spp']})")
    ap.add_argument("--fd-seeds", type=int, help="seeds of the finite-difference reference "
                                                  f"(default {DEFAULTS['fd_seeds']})")
    ap.add_argument("--error-seeds", type=int, help="seeds of the gradients whose errors are "
                                                     f"averaged (default {DEFAULTS['error_seeds']})")
    ap.add_argument("--cases", nargs="*", help="subset of case names")
    ap.add_argument("--no-mitsuba", action="store_true", help="leave Mitsuba's integrators out")
    ap.add_argument("--quick", action="store_true",
                    help="smoke run: " + ", ".join(f"{k}={v}" for k, v in QUICK.items())
                    + "; Mitsuba's projective integrators on the first analytic case only")
    args = ap.parse_args(argv)
    for k, v in (QUICK if args.quick else DEFAULTS).items():
        if getattr(args, k) is None:
            setattr(args, k, v)
    return args


class PathProblem(Problem):
    """A :class:`harness.Problem` whose parameter moves along a path θ(s):
    ``poses.moved(θ₀, s, v)`` for a transform (as ``pathgrad.gradcheck``
    does), θ₀ + s v otherwise. Every gradient is taken with respect to a
    scalar leaf s at 0, so it is the directional derivative along v."""

    def __post_init__(self):
        self.params = pathgrad.parameters(self.scene, self.key, enable_grad=False)
        value = self.params[self.key]
        self.pose = poses.is_transform(value)
        if self.pose:
            self.theta0 = poses.detached(value)
            self.v = poses.check_direction(self.direction, self.key)
        else:
            self.theta0 = type(value)(dr.detach(value))
            self.v = _direction_like(self.theta0, self.direction, self.key)

    #: seeds of the gradients in errors() (harness: 0, 1, 2)
    error_seeds = (0, 1, 2)

    def errors(self, integ, spp: int, seeds=None) -> dict:
        return super().errors(integ, spp, self.error_seeds if seeds is None else seeds)

    def at(self, s):
        return poses.moved(self.theta0, s, self.v) if self.pose else self.theta0 + s * self.v

    def reset(self):
        self._set(self.at(0.0))

    def fd_reference(self, spp: int, seeds: int) -> np.ndarray:
        """As Problem.fd_reference, with θ(±ε) on the path."""
        per_seed = []
        for s in range(seeds):
            imgs = []
            for sign in (1, -1):
                self._set(self.at(sign * self.eps))
                imgs.append(np.array(pathgrad.render(self.scene, spp=spp, seed=7000 + s),
                                     np.float64)[..., :3])
            per_seed.append((imgs[0] - imgs[1]) / (2 * self.eps))
        self.reset()
        per_seed = np.stack(per_seed)
        self.fd = per_seed.mean(0)
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

    def reverse(self, integ, spp: int, seed: int) -> float:
        """d/ds ⟨w, I(θ(s))⟩ at s = 0 by dr.backward."""
        leaf = mi.Float(0.0)
        dr.enable_grad(leaf)
        self._set(self.at(leaf))
        try:
            img = self._render(self.scene, self.params, integ, spp, seed)
            dr.backward(dr.sum(img * self.W, axis=None))
            return float(dr.grad(leaf)[0])
        finally:
            self.reset()

    def forward(self, integ, spp: int, seed: int) -> np.ndarray:
        """Gradient image along the path (Mitsuba's integrators: tangent
        pushed into the scene first, then render_forward)."""
        t = mi.Float(0.0)
        dr.enable_grad(t)
        self._set(self.at(t))
        try:
            if isinstance(integ, integrator_class()):
                img = pathgrad.render(self.scene, self.params, spp=1, spp_grad=spp,
                                      seed_grad=seed, integrator=integ)
                dr.forward(t)
                g = np.array(dr.grad(img))
            else:
                dr.forward(t, dr.ADFlag.ClearEdges)
                g = np.array(integ.render_forward(self.scene, self.params, seed=seed, spp=spp))
        finally:
            self.reset()
        return g[..., :3]


def one_line(e: BaseException, width: int = 150) -> str:
    msg = " ".join(str(e).split())
    return f"{type(e).__name__}: {msg}"[:width]


def mitsuba_blocked(scene, key):
    """Why Mitsuba's integrators cannot differentiate ``key``, or None."""
    if mi.traverse(scene).flags(key) & mi.ParamFlags.NonDifferentiable:
        return f"Mitsuba flags '{key}' non-differentiable"
    return None


def run_case(name, sensor, analytic, key, eps, direction, args, projective=True):
    """One case: FD reference, then every gradient (``projective``: include
    Mitsuba's projective integrators)."""
    scene = camera_scene(sensor, res=args.res, analytic=analytic)
    depth = scene.integrator().max_depth
    prob = PathProblem(name, scene, key, eps, direction)
    prob.error_seeds = tuple(range(args.error_seeds))
    t0 = time.perf_counter()
    prob.fd_reference(args.fd_spp, args.fd_seeds)
    row = {"case": name, "sensor": sensor, "analytic": analytic, "key": key, "eps": eps,
           "direction": direction, "spp": args.spp, "ref_noise": prob.ref_noise,
           "fd_seconds": time.perf_counter() - t0}
    row["interior only"] = measure(prob, lambda: pathgrad.make_integrator(max_depth=depth,
                                                                          boundary=False), args)
    row["pathgrad"] = measure(prob, lambda: pathgrad.make_integrator(max_depth=depth), args)
    if args.no_mitsuba:
        return row
    blocked = mitsuba_blocked(scene, key)
    for label in MITSUBA:
        if blocked:
            row[label] = {"n/a": blocked}
            continue
        if label != "prb" and not projective:
            row[label] = {"skipped": "--quick: projective integrators on the first analytic "
                                     "case only"}
            continue
        row[label] = measure(prob, lambda: mi.load_dict(
            {"type": label} if label == "direct_projective"
            else {"type": label, "max_depth": depth}), args)
    return row


def measure(prob, make_integrator, args) -> dict:
    """``prob.measure`` with a fresh integrator; an exception is reported
    (``{'error': one line}``) and the run goes on."""
    try:
        return prob.measure(make_integrator(), args.spp, args.repeats)
    except Exception as e:
        prob.reset()
        return {"error": one_line(e)}


def table(rows) -> str:
    hdr = (f"{'case':<20}{'gradient':<19}{'img err':>9}{'rev err':>9}{'s':>8}{'MiB':>7}"
           f"{'err/int':>9}{'s/int':>7}   notes")
    lines = [hdr, "-" * len(hdr)]
    for r in rows:
        base = r["interior only"]
        first, noted = True, False
        for label in ("interior only", "pathgrad") + MITSUBA:
            if label not in r:
                continue
            m = r[label]
            head = f"{r['case'] if first else '':<20}{label:<19}"
            if "n/a" in m:
                if label == MITSUBA[0]:  # one line for all of Mitsuba's integrators
                    lines.append(f"{'':<20}{'Mitsuba (all)':<19}n/a ({m['n/a']})")
                continue
            if "skipped" in m:
                continue
            if "error" in m:
                lines.append(head + "failed: " + m["error"])
                first = False
                continue
            if "seconds" in base:
                ratios = (f"{m['image_rel_error'] / max(base['image_rel_error'], 1e-12):>9.2f}"
                          f"{m['seconds'] / base['seconds']:>7.2f}")
            else:
                ratios = f"{'-':>9}{'-':>7}"
            note = "" if noted else f"FD noise {r['ref_noise']:.4f}, eps {r['eps']:g}"
            noted = True
            lines.append(f"{head}{m['image_rel_error']:>9.4f}{m['reverse_rel_error']:>9.4f}"
                         f"{m['seconds']:>8.3f}{m['peak_mib']:>7.1f}{ratios}   {note}")
            first = False
    return "\n".join(lines)


def main(argv=None):
    args = parse_args(argv)
    t_start = time.perf_counter()
    rows = []
    projective_done = False
    for name, sensor, analytic, key, eps, direction in CASES:
        if args.cases and name not in args.cases:
            continue
        print(f"... {name}", file=sys.stderr, flush=True)
        t0 = time.perf_counter()
        projective = not args.quick or (analytic is not None and not projective_done)
        row = run_case(name, sensor, analytic, key, eps, direction, args, projective)
        projective_done = projective_done or (analytic is not None and projective)
        row["case_seconds"] = time.perf_counter() - t0
        rows.append(row)
    text = table(rows)
    total = time.perf_counter() - t_start
    text += (f"\n\n{args.res}x{args.res}, {args.spp} spp, FD reference {args.fd_spp} spp x "
             f"{args.fd_seeds} seeds, errors over {args.error_seeds} gradient seed(s), "
             f"{args.repeats} timing repeat(s); total {total:.0f} s")
    if args.quick:
        text += ("\n--quick smoke run: numbers not meaningful; Mitsuba's projective integrators "
                 "run on the first analytic case only")
    print(text)
    save_results("camera", text, meta(res=args.res, spp=args.spp, fd_spp=args.fd_spp,
                                      fd_seeds=args.fd_seeds, repeats=args.repeats,
                                      error_seeds=args.error_seeds,
                                      quick=args.quick, total_seconds=total), rows)
    return rows


if __name__ == "__main__":
    main()
