"""Recover a camera's pose (and optionally its field of view) from one image.

The scene of pathgrad.scenes.camera_scene: a floor, a flat-shaded box and a
smooth ball, lit by a square area light that makes both cast shadows. The
target is one image rendered from the true camera. The optimiser starts from
a camera moved 0.2 scene units and turned 3.5 degrees away from it (random
directions drawn from --seed) and recovers its translation and rotation
(6 numbers; with --fov also its horizontal field of view, started 4 degrees
off) with Adam. The camera pose enters the image everywhere: every camera
ray moves (pathgrad's interior term follows the first hit along the moving
ray) and every edge in view slides over the film (the box's and ball's
outlines, and the shadows' edges on the floor: the boundary term).

    python examples/camera_pose.py              # 64 px, 150 steps, ~40 s
    python examples/camera_pose.py --fov        # also the field of view
    python examples/camera_pose.py --fast       # 32 px, 60 steps: what the tests run

Writes to --out (default out/camera_pose):
  comparison.png   target, initial and final renders and the differences
                   |initial - target| and |final - target| (x4)
  loss.png         image loss and pose error per step
  results.json     true, start and recovered poses (camera centre, rotation
                   matrix, field of view), the errors, timings

Pose parametrisation: a translation t of the camera centre (world axes,
scene units) and a rotation about the camera centre by angles (rx, ry, rz)
in degrees about the world x, y and z axes (x first, then y, then z):
to_world = Tr(c + t) Rz Ry Rx Tr(-c) start, with c the start camera centre.
Adam's step for the angles is the translation's step times 180 / (π D),
D = 3.9 the camera's distance to the objects, so that one step of either
moves the view by about the same amount.

Errors: the translation error is the distance between the true and
recovered camera centres (scene units), the rotation error the angle of the
rotation between the true and recovered camera orientations (degrees). The
parameter error (param_error_*) adds both in scene units:
translation error + D * rotation error (radians), i.e. how far each alone
would move the view at the objects' depth (with --fov, plus D * the field of
view error in radians).
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
from pathgrad import poses, shapes  # noqa: E402
from pathgrad.scenes import diffuse  # noqa: E402

KEY = "sensor.to_world"
FOV_KEY = "sensor.x_fov"
EYE, LOOK_AT = [1.6, 2.6, 2.4], [0.0, 0.3, 0.0]   # the true camera
DEPTH = 3.7               # distance from the camera to the point it looks at (scene units)
START_TRANSLATION = 0.2   # scene units
START_ROTATION = 3.5      # degrees
START_FOV = 4.0           # degrees (--fov)
AXES = ((1, 0, 0), (0, 1, 0), (0, 0, 1))
WARMUP = 1                # steps over which the learning rate ramps up


def build_scene(res: int, fov: float = 50.0) -> mi.Scene:
    """pathgrad.scenes.camera_scene's floor, box, ball and light, plus three
    objects nearer and farther from the camera: parallax between them is
    what tells a sideways move of the camera from a turn."""
    T = mi.ScalarTransform4f
    lv = np.array([[-0.3, 2.5, -0.3], [0.3, 2.5, -0.3], [0.3, 2.5, 0.3], [-0.3, 2.5, 0.3]])
    return pathgrad.load_scene({
        "type": "scene",
        "integrator": {"type": "pathgrad", "max_depth": 2},
        "sensor": {"type": "perspective", "fov": fov,
                   "to_world": T().look_at(origin=EYE, target=LOOK_AT, up=[0, 1, 0]),
                   "film": {"type": "hdrfilm", "width": res, "height": res,
                            "rfilter": {"type": "box"}, "pixel_format": "rgb"},
                   "sampler": {"type": "independent"}},
        "floor": shapes.grid(4, 6.0, name="floor", smooth=False, bsdf=diffuse(0.7)),
        "box": {"type": "cube", "bsdf": diffuse(0.3, 0.5, 0.8),
                "to_world": T().translate([-0.45, 0.25, 0.1]).rotate([0, 1, 0], 30).scale(0.25)},
        "ball": shapes.icosphere(2, 0.3, name="ball", center=(0.35, 0.5, -0.1),
                                 bsdf=diffuse(0.8, 0.4, 0.3)),
        "near": {"type": "cube", "bsdf": diffuse(0.85, 0.75, 0.2),
                 "to_world": T().translate([0.7, 0.12, 1.1]).rotate([0, 1, 0], -20).scale(0.12)},
        "pillar": {"type": "cube", "bsdf": diffuse(0.25, 0.6, 0.3),
                   "to_world": T().translate([-1.1, 0.5, -1.6]).rotate([0, 1, 0], 15)
                   .scale([0.15, 0.5, 0.15])},
        "far": shapes.icosphere(2, 0.25, name="far", center=(0.9, 0.25, -1.7),
                                bsdf=diffuse(0.6, 0.3, 0.7)),
        "light": shapes.mesh_from_arrays(
            "light", lv, np.array([[0, 1, 2], [0, 2, 3]]), smooth=False,
            emitter={"type": "area", "radiance": {"type": "rgb", "value": 15}}),
        "sky": {"type": "constant", "radiance": {"type": "rgb", "value": 0.2}},
    })


def start_offsets(seed: int) -> tuple[np.ndarray, np.ndarray]:
    """The start pose's translation (scene units) and rotation vector
    (degrees) relative to the true pose: fixed lengths, random directions."""
    rng = np.random.default_rng(seed)
    d = rng.normal(size=(2, 3))
    d /= np.linalg.norm(d, axis=1, keepdims=True)
    return START_TRANSLATION * d[0], START_ROTATION * d[1]


def moved(base, t, r):
    """``base`` turned about its own centre c by the angles ``r`` (degrees,
    about the world x, y, z axes: x first, then y, then z) and its centre
    moved by ``t``: ``Tr(c + t) Rz Ry Rx Tr(-c) base`` (how the start pose is
    made from the true one)."""
    T = mi.Transform4f
    t, r = mi.Vector3f(t), mi.Vector3f(r)
    c = base @ mi.Point3f(0, 0, 0)
    c = mi.Vector3f(c.x, c.y, c.z)
    # one rotation per world axis, each by its own angle: a rotation about
    # the normalised vector r would be NaN (and its gradient too) at r = 0
    m = (T().translate(c + t) @ T().rotate(mi.Vector3f(AXES[2]), r.z)
         @ T().rotate(mi.Vector3f(AXES[1]), r.y) @ T().rotate(mi.Vector3f(AXES[0]), r.x))
    return m @ T().translate(-c) @ base


class Rig:
    """The optimised pose, in coordinates that separate what one image
    determines well from what it determines poorly (Adam scales each
    coordinate's step by its own gradient's size, so this matters).

    Moving the camera sideways by δ and turning it back by δ / D keeps
    every point at depth D in place: only parallax (the floor's near and far
    parts against the objects) tells the two apart. So the pose is

    * ``orbit`` (2): turn about the start camera's up and right axes
      through the pivot D in front of it (the objects): the weakly
      determined directions;
    * ``dolly`` (1): move along the start camera's view axis;
    * ``aim`` (3): then turn about the camera centre (about the start
      camera's right, up and view axes: tilt, pan, roll): strongly
      determined, the image shifts (rolls) as a whole.

    All in scene units at the pivot's depth: an angle θ is stored as D θ,
    so one learning rate suits all six.
    """

    def __init__(self, start):
        self.start = start
        m = matrix(start)
        self.axes = [mi.Vector3f(*map(float, m[:3, i] / np.linalg.norm(m[:3, i])))
                     for i in range(3)]                     # right, up, view (world)
        self.pivot = mi.Vector3f(*map(float, m[:3, 3] + DEPTH * m[:3, 2]))

    def pose(self, orbit, dolly, aim):
        T = mi.Transform4f
        deg = 180 / (np.pi * DEPTH)                         # degrees per stored unit
        right, up, view = self.axes
        m = (T().translate(self.pivot) @ T().rotate(up, orbit.x * deg)
             @ T().rotate(right, orbit.y * deg) @ T().translate(-self.pivot) @ self.start)
        m = T().translate(dolly * view) @ m
        c = m @ mi.Point3f(0, 0, 0)
        c = mi.Vector3f(c.x, c.y, c.z)
        turn = (T().rotate(right, aim.x * deg) @ T().rotate(up, aim.y * deg)
                @ T().rotate(view, aim.z * deg))
        return T().translate(c) @ turn @ T().translate(-c) @ m


class Adam:
    """Adam on a small parameter vector (numpy). ``full=True``: with the
    full second-moment matrix V = E[g gᵀ] instead of its diagonal, the step
    being -lr V^(-1/2) E[g] (bias-corrected): it does not depend on the axes
    the parameters are written in, so coupled directions that the image
    determines poorly are not starved by noisy well-determined ones."""

    def __init__(self, n: int, *, full: bool = True, beta1=0.9, beta2=0.999, eps=1e-12):
        self.full, self.b1, self.b2, self.eps = full, beta1, beta2, eps
        self.m = np.zeros(n)
        self.v = np.zeros((n, n)) if full else np.zeros(n)
        self.t = 0

    def step(self, g: np.ndarray) -> np.ndarray:
        """The step direction for gradient ``g`` (multiply by the learning rate)."""
        self.t += 1
        self.m = self.b1 * self.m + (1 - self.b1) * g
        m = self.m / (1 - self.b1 ** self.t)
        if not self.full:
            self.v = self.b2 * self.v + (1 - self.b2) * g * g
            return m / (np.sqrt(self.v / (1 - self.b2 ** self.t)) + 1e-8)
        self.v = self.b2 * self.v + (1 - self.b2) * np.outer(g, g)
        w, q = np.linalg.eigh(self.v / (1 - self.b2 ** self.t))
        return q @ ((q.T @ m) / np.sqrt(np.maximum(w, 0) + self.eps))


def matrix(transform) -> np.ndarray:
    """A (detached) transform's 4x4 matrix as numpy."""
    return np.array(dr.detach(transform.matrix), dtype=np.float64).reshape(4, 4)


def pose_errors(m: np.ndarray, truth: np.ndarray) -> tuple[float, float]:
    """(translation error in scene units, rotation error in degrees) of the
    camera matrix ``m`` against ``truth``."""
    dt = float(np.linalg.norm(m[:3, 3] - truth[:3, 3]))
    rel = m[:3, :3].T @ truth[:3, :3]
    cos = np.clip((np.trace(rel) - 1) / 2, -1.0, 1.0)
    return dt, float(np.degrees(np.arccos(cos)))


def main(argv=None) -> dict:
    def extra(ap):
        ap.add_argument("--fov", action="store_true",
                        help=f"also recover the horizontal field of view (started "
                             f"{START_FOV:g} degrees off)")
        ap.add_argument("--no-boundary", action="store_true",
                        help="drop pathgrad's boundary term: the outlines and shadow edges "
                             "moving over the film then give no gradient")
        ap.add_argument("--adam", choices=["full", "diag"], default="full",
                        help="Adam with the full second-moment matrix (default) or the "
                             "usual diagonal one")
        ap.add_argument("--target-spp", type=int, default=512,
                        help="samples per pixel of the target image (default 512)")

    args = _common.parse_args(
        __doc__, argv,
        full=dict(iters=150, spp=16, res=64, lr=0.02),
        fast=dict(iters=60, spp=8, res=32, lr=0.02),
        extra=extra)
    scene = build_scene(args.res)
    keys = [KEY] + ([FOV_KEY] if args.fov else [])
    params = pathgrad.parameters(scene, keys, enable_grad=False)
    true_pose = poses.detached(params[KEY])
    truth = matrix(true_pose)
    true_fov = float(params[FOV_KEY][0]) if args.fov else None
    target = pathgrad.render(scene, spp=args.target_spp, seed=10**6 + args.seed)

    dt0, dr0 = start_offsets(args.seed)
    start = poses.detached(moved(true_pose, mi.Vector3f(*map(float, dt0)),
                                  mi.Vector3f(*map(float, dr0))))
    start_fov = true_fov + START_FOV if args.fov else None

    rig = Rig(start)
    n = 7 if args.fov else 6
    x = np.zeros(n)                 # orbit (2), dolly, aim (3)[, fov], see Rig
    adam = Adam(n, full=args.adam == "full")
    deg = 180 / (np.pi * DEPTH)     # degrees per stored unit (angles and fov)
    leaves = []

    def apply():
        """Write the pose (and fov) of ``x`` into the scene, attached to fresh leaves."""
        leaves[:] = [mi.Float(float(v)) for v in x]
        dr.enable_grad(*leaves)
        l = leaves
        params[KEY] = rig.pose(mi.Vector2f(l[0], l[1]), l[2], mi.Vector3f(l[3], l[4], l[5]))
        if args.fov:
            params[FOV_KEY] = start_fov + l[6] * deg
        params.update()

    def errors():
        dt, drot = pose_errors(matrix(params[KEY]), truth)
        dfov = abs(float(dr.detach(params[FOV_KEY])[0]) - true_fov) if args.fov else 0.0
        return dt, drot, dfov

    def combined(e):
        return e[0] + DEPTH * np.radians(e[1]) + DEPTH * np.radians(e[2])

    run = _common.Run("camera_pose", args, total=args.iters)
    apply()
    initial = pathgrad.render(scene, spp=args.target_spp, seed=10**6 + args.seed)
    e0 = errors()
    trans_hist, rot_hist = [], []
    for it in range(args.iters):
        # ramp the step up over the first WARMUP steps: Adam's first steps
        # have the full size whatever the gradient's noise
        lr = _common.learning_rate(args.lr, it, args.iters) * min(1.0, (it + 1) / WARMUP)
        img = pathgrad.render(scene, params, spp=args.spp, seed=args.seed * 100003 + it,
                              boundary=not args.no_boundary)
        loss = dr.mean(dr.square(img - target), axis=None)
        dr.backward(loss)
        x -= lr * adam.step(np.array([dr.grad(v)[0] for v in leaves]))
        apply()
        e = errors()
        trans_hist.append(e[0])
        rot_hist.append(e[1])
        run.log(loss, combined(e))

    final = pathgrad.render(scene, spp=args.target_spp, seed=10**6 + args.seed)
    e1 = errors()

    def diff(a, b):
        d = np.abs(np.asarray(a)[..., :3] - np.asarray(b)[..., :3]).mean(-1, keepdims=True)
        return np.repeat(4 * d, 3, axis=-1)

    m1 = matrix(params[KEY])
    results = {
        "param_error_start": combined(e0),
        "translation_error_start": e0[0], "translation_error_final": e1[0],
        "rotation_error_start_deg": e0[1], "rotation_error_final_deg": e1[1],
        "translation_error_history": trans_hist, "rotation_error_history_deg": rot_hist,
        "boundary": not args.no_boundary,
        "start_offset_translation": dt0, "start_offset_rotation_deg": dr0,
        "true_center": truth[:3, 3], "start_center": matrix(start)[:3, 3],
        "recovered_center": m1[:3, 3],
        "true_rotation": truth[:3, :3], "recovered_rotation": m1[:3, :3],
    }
    if args.fov:
        results.update({"true_fov": true_fov, "start_fov": start_fov,
                        "recovered_fov": float(dr.detach(params[FOV_KEY])[0]),
                        "fov_error_start_deg": e0[2], "fov_error_final_deg": e1[2]})
    print(f"translation error {e0[0]:.4f} -> {e1[0]:.4f} scene units, rotation error "
          f"{e0[1]:.3f} -> {e1[1]:.3f} degrees"
          + (f", field of view error {e0[2]:.3f} -> {e1[2]:.3f} degrees" if args.fov else ""))
    return run.finish(
        [[target, initial, final, diff(initial, target), diff(final, target)]],
        col_titles=("target", "initial", "final", "|initial - target| x4", "|final - target| x4"),
        results=results,
        param_label="pose error (scene units)")


if __name__ == "__main__":
    main()
