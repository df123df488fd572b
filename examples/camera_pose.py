"""Recover a camera's pose (and optionally its field of view) from one image.

The scene is pathgrad.scenes.camera_scene's (a floor, a flat-shaded box and
a smooth ball under a square area light that makes them cast shadows) with
three more objects, one near the camera and two far from it. The target is
one image rendered from the true camera. The optimiser starts from a camera
moved 0.2 scene units and turned 3.5 degrees away from it (directions drawn
from --seed) and recovers its translation and rotation (6 numbers; with
--fov also its horizontal field of view, started 4 degrees off) with Adam.
The camera pose enters the image everywhere: every camera ray moves
(pathgrad's interior term follows the first hit along the moving ray) and
every edge in view slides over the film (outlines, and the shadows' edges on
the floor: the boundary term, which carries almost all of the gradient here:
with --no-boundary the camera does not find the pose).

    python examples/camera_pose.py              # 48 px, 150 steps, ~2 min
    python examples/camera_pose.py --fov        # also the field of view
    python examples/camera_pose.py --fast       # 24 px, 60 steps, ~30 s: what the tests run

Writes to --out (default out/camera_pose):
  comparison.png   target, initial and final renders, and the differences
                   |initial - target| and |final - target| (times 4)
  loss.png         image loss and pose error per step
  results.json     true, start and recovered poses (camera centre, rotation
                   matrix, field of view), the errors and their histories,
                   timings

Why the extra objects and these variables: moving the camera sideways by δ
and turning it back by δ / D keeps every point at depth D where it was in
the image; only parallax between nearer and farther things tells the two
apart. So the objects spread in depth, and the optimiser's variables (see
Rig) separate that weakly determined "orbit" about the objects from the
well determined "aim" of the camera: Adam scales each variable's step by
its own gradient's size, which only helps along the variables' own axes.
Measured (32 px, 8 spp, 60 steps, seed 0): on camera_scene alone, with the
camera's translation and its rotation about its centre as the variables,
the translation error fell from 0.2 to 0.15 only; with the Rig's variables
to 0.07; with the objects added too, to 0.02. Likewise, with --fov, moving
the camera along its view axis and zooming both change the objects' size:
the field of view follows the dolly (so that the objects keep their size)
and a separate zoom is optimised (fast run, seed 0: final translation /
field of view errors 0.082 / 0.57 degrees with dolly and fov as the
variables, 0.030 / 0.14 with these). Along the weak directions the
target's own noise shifts the optimum too, hence the target's 2048 samples
per pixel (512: final errors about twice as large).

Errors: the translation error is the distance between the true and
recovered camera centres (scene units), the rotation error the angle of the
rotation from the recovered to the true camera orientation (degrees). The
parameter error (param_error_* in results.json, the plotted pose error) adds
both in scene units: translation error + D * rotation error (radians), D =
3.7 the camera's distance to the point it looks at, i.e. how far each alone
would move that point; with --fov, plus D * the field of view error (radians).
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
    moved by ``t`` (scene units): ``Tr(c + t) Rz Ry Rx Tr(-c) base``. How
    the start pose is made from the true one (``t``, ``r``: numpy)."""
    T = mi.Transform4f
    c = matrix(base)[:3, 3]
    m = T().translate(mi.Vector3f(*map(float, c + t)))
    for axis, angle in reversed(list(zip(AXES, r))):
        m = m @ T().rotate(mi.Vector3f(axis), float(angle))
    return m @ T().translate(mi.Vector3f(*map(float, -c))) @ base


class Rig:
    """The optimised pose, in variables that separate what one image
    determines well from what it determines poorly (Adam scales each
    variable's step by its own gradient's size, so this matters). From the
    start pose:

    * ``orbit`` (2): turn about the start camera's y (up) and x axes
      through the pivot D in front of it (the objects): the camera moves
      sideways and turns back to the objects, which only parallax shows;
      weakly determined;
    * ``dolly`` (1): then move along the start camera's view axis (z);
    * ``aim`` (3): then turn about the camera centre (about the start
      camera's x, y and z axes: tilt, pan, roll); strongly determined, the
      whole image shifts (rolls).

    All in scene units at the pivot's depth: an angle θ is stored as D θ,
    so that one learning rate suits all six (and the zoom of --fov, see
    main()).
    """

    def __init__(self, start):
        self.start = start
        m = matrix(start)
        self.axes = [mi.Vector3f(*map(float, m[:3, i] / np.linalg.norm(m[:3, i])))
                     for i in range(3)]                     # camera x, y (up), z (view)
        self.pivot = mi.Vector3f(*map(float, m[:3, 3] + DEPTH * m[:3, 2]))

    def pose(self, orbit, dolly, aim):
        T = mi.Transform4f
        deg = 180 / (np.pi * DEPTH)                         # degrees per stored unit
        x, y, z = self.axes
        # one rotation per axis, each by its own (attached) angle: a rotation
        # about a normalised vector of angles would be NaN (and its gradient
        # too) where all the angles are 0
        m = (T().translate(self.pivot) @ T().rotate(y, orbit.x * deg)
             @ T().rotate(x, orbit.y * deg) @ T().translate(-self.pivot) @ self.start)
        m = T().translate(dolly * z) @ m
        c = m @ mi.Point3f(0, 0, 0)
        c = mi.Vector3f(c.x, c.y, c.z)
        turn = T().rotate(x, aim.x * deg) @ T().rotate(y, aim.y * deg) @ T().rotate(z, aim.z * deg)
        return T().translate(c) @ turn @ T().translate(-c) @ m


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
                             "moving over the film then give no gradient (over 95%% of "
                             "the pose gradient here), and the pose is not found")
        ap.add_argument("--target-spp", type=int, default=2048,
                        help="samples per pixel of the target image (default 2048; its "
                             "noise shifts the optimum along the weakly determined "
                             "directions: with 512 the final errors were about twice as large)")

    args = _common.parse_args(
        __doc__, argv,
        full=dict(iters=150, spp=8, res=48, lr=0.02),
        fast=dict(iters=60, spp=16, res=24, lr=0.02),
        extra=extra)
    scene = build_scene(args.res)
    keys = [KEY] + ([FOV_KEY] if args.fov else [])
    params = pathgrad.parameters(scene, keys, enable_grad=False)
    true_pose = poses.detached(params[KEY])
    truth = matrix(true_pose)
    true_fov = float(params[FOV_KEY][0]) if args.fov else None
    target = pathgrad.render(scene, spp=args.target_spp, seed=10**6 + args.seed)

    dt0, dr0 = start_offsets(args.seed)
    start = poses.detached(moved(true_pose, dt0, dr0))
    start_fov = true_fov + START_FOV if args.fov else None

    # the optimised variables, all in scene units at the pivot's depth (see
    # Rig; --fov's zoom too), so that one learning rate suits all
    rig = Rig(start)
    deg = 180 / (np.pi * DEPTH)         # degrees per unit of an angle variable
    opt = mi.ad.Adam(lr=args.lr)
    opt["orbit"] = mi.Vector2f(0.0)
    opt["dolly"] = mi.Float(0.0)
    opt["aim"] = mi.Vector3f(0.0)
    if args.fov:
        opt["zoom"] = mi.Float(0.0)
    half = float(np.tan(np.radians(start_fov) / 2)) if args.fov else None

    def apply():
        params[KEY] = rig.pose(opt["orbit"], opt["dolly"], opt["aim"])
        if args.fov:
            # a dolly changes the objects' size as a zoom does: let the field
            # of view follow the dolly so that the objects (at depth D) keep
            # their size, and optimise the zoom on top of that
            follow = 2 * dr.atan(half * DEPTH / (DEPTH - opt["dolly"]))
            params[FOV_KEY] = dr.rad2deg(follow) + opt["zoom"] * deg
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
    trans_hist, rot_hist = [e0[0]], [e0[1]]      # before each step, and at the end
    for it in range(args.iters):
        opt.set_learning_rate(_common.learning_rate(args.lr, it, args.iters))
        img = pathgrad.render(scene, params, spp=args.spp, seed=args.seed * 100003 + it,
                              boundary=not args.no_boundary)
        loss = dr.mean(dr.square(img - target), axis=None)
        dr.backward(loss)
        opt.step()
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
