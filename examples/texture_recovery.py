"""Recover a bitmap texture on a known mesh from a few rendered views.

The scene is a corner: a floor and a back wall (one flat-shaded mesh with
UVs) that share one texture, unfolded over the floor (bottom half of the
UV square) and up the wall (top half). Its diffuse reflectance is a
``bitmap`` texture (bilinear filtering) built from a float array. It is lit
by a rectangular area light and a constant environment; light bounces
between floor and wall (max_depth 3), so every pixel also depends on texels
it does not see directly. Four cameras look at it from the front, left,
right and above.

A coloured checker with a disc across the fold is the target texture; the
optimisation starts from uniform grey and fits the texels
(``corner.bsdf.reflectance.data``) with Adam to the target images of all
views (mean squared image error; new render seeds every step), clamping them
to [0, 1] after each step; the learning rate decays to a tenth over the
second half. The parameter error is the RMSE of the texels against the
truth, over the texels some view sees. The loss levels off at the Monte
Carlo noise of the low-spp renders (about 1e-3 at 16 spp), not at zero.

    python examples/texture_recovery.py            # 64x64 texels, 4 views of 128x128, ~1.5 min
    python examples/texture_recovery.py --fast     # 32x32 texels, 3 views of 64x64, ~15 s

Other flags: --iters --spp --res --lr --texels --seed --out --quiet (--help).

Writes to out/texture_recovery/ (or --out):
  comparison.png            target / initial / final renders of every view, and
                            a last row with the textures (unfolded: wall above floor)
  loss.png, results.json    loss and texel RMSE per step; figures of the run
  recovered_texture.exr     the fitted texels (linear float, H x W x 3)
  recovered_texture.png     the same as an sRGB PNG
  target_texture.png        the true texture
The texture files are in the bitmap's own layout (row 0 is v = 0, the front
edge of the floor): they can be loaded back as the bitmap of this mesh.
"""
from __future__ import annotations

import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _common  # noqa: E402

import drjit as dr  # noqa: E402
import mitsuba as mi  # noqa: E402

import pathgrad  # noqa: E402
from pathgrad import shapes  # noqa: E402
from pathgrad.imageio_utils import write_exr, write_png  # noqa: E402

NAME = "texture_recovery"
KEY = "corner.bsdf.reflectance.data"

#: camera positions (all look at the corner); --fast uses the first three
CAMERAS = [(0.0, 1.3, 2.9), (-2.0, 1.2, 2.1), (2.0, 1.2, 2.1), (0.0, 2.9, 1.5)]
CAMERA_NAMES = ["front", "left", "right", "above"]
LOOK_AT = [0.0, 0.4, 0.4]


def corner_arrays():
    """Vertices, faces and UVs of the corner: a 2 x 1 floor (y = 0, z from 1 at
    the front to 0) and a 2 x 1 wall (z = 0, y from 0 to 1). The UV square is
    folded over both: u = (x + 1) / 2; v runs 0 -> 0.5 over the floor from its
    front edge to the fold, and 0.5 -> 1 up the wall."""
    verts, uv = [], []
    for y, z, v in [(0.0, 1.0, 0.0), (0.0, 0.0, 0.5), (1.0, 0.0, 1.0)]:
        for x in (-1.0, 1.0):
            verts.append([x, y, z])
            uv.append([(x + 1.0) / 2.0, v])
    faces = []
    for r in range(2):   # two quads, counter-clockwise seen from the front
        a, b, c, d = 2 * r, 2 * r + 1, 2 * r + 2, 2 * r + 3
        faces += [[a, b, d], [a, d, c]]
    return np.array(verts), np.array(faces), np.array(uv)


def target_texture(n: int) -> np.ndarray:
    """The true texture, (n, n, 3) float32 linear albedo: an 8 x 8 checker of
    cream and teal, a red disc across the fold and a blue stripe near the top
    of the wall."""
    c = (np.arange(n) + 0.5) / n
    u, v = np.meshgrid(c, c, indexing="xy")           # [row, col] = (v, u)
    checker = ((np.floor(u * 8) + np.floor(v * 8)) % 2)[..., None]
    tex = checker * np.array([0.80, 0.72, 0.50]) + (1 - checker) * np.array([0.10, 0.40, 0.45])
    disc = ((u - 0.5) ** 2 + (v - 0.48) ** 2 < 0.22 ** 2)[..., None]
    tex = np.where(disc, np.array([0.75, 0.12, 0.08]), tex)
    stripe = ((v > 0.84) & (v < 0.91))[..., None]
    tex = np.where(stripe, np.array([0.10, 0.15, 0.70]), tex)
    return tex.astype(np.float32)


def make_scene(texture: np.ndarray, res: int, views: int = 4, max_depth: int = 3) -> mi.Scene:
    """The corner with ``texture`` (H, W, 3 float) as its reflectance, the
    lights, and the first ``views`` cameras of :data:`CAMERAS` (sensor i)."""
    T = mi.ScalarTransform4f
    verts, faces, uv = corner_arrays()
    bsdf = {"type": "diffuse",
            "reflectance": {"type": "bitmap", "bitmap": mi.Bitmap(np.asarray(texture, np.float32)),
                            "filter_type": "bilinear", "wrap_mode": "clamp", "raw": True}}
    d = {"type": "scene",
         "integrator": {"type": "pathgrad", "max_depth": max_depth},
         "corner": shapes.mesh_from_arrays("corner", verts, faces, smooth=False, uv=uv, bsdf=bsdf),
         "sky": {"type": "constant", "radiance": {"type": "rgb", "value": 0.25}},
         # a 0.8 x 0.8 light above the front right, facing down, out of every view
         "lamp": {"type": "rectangle",
                  "to_world": T().translate([1.3, 2.6, 1.9]).rotate([1, 0, 0], 90).scale(0.4),
                  "emitter": {"type": "area", "radiance": {"type": "rgb", "value": 25.0}}}}
    for i, origin in enumerate(CAMERAS[:views]):
        d[f"cam{i}"] = {"type": "perspective", "fov": 38,
                        "to_world": T().look_at(origin=list(origin), target=LOOK_AT, up=[0, 1, 0]),
                        "film": {"type": "hdrfilm", "width": res, "height": res,
                                 "rfilter": {"type": "box"}, "pixel_format": "rgb"},
                        "sampler": {"type": "independent"}}
    scene = pathgrad.load_scene(d)
    ids = [s.id() for s in scene.sensors()]
    assert ids == [f"cam{i}" for i in range(views)], ids   # sensor i is cam{i}
    return scene


def render_views(scene, params=None, *, spp: int, seed: int) -> list:
    """One image per sensor (seeds seed, seed + 1, ...)."""
    return [pathgrad.render(scene, params, spp=spp, seed=seed + i, sensor=i)
            for i in range(len(scene.sensors()))]


def seen_texels(scene, key: str = KEY, *, spp: int = 4, seed: int = 0) -> np.ndarray:
    """Boolean (H, W) mask of the texels that some view sees: those the sum of
    all images depends on (its gradient with respect to the texel is more than
    1e-3 of the largest one)."""
    params = pathgrad.parameters(scene, key)
    for i in range(len(scene.sensors())):
        dr.backward(dr.sum(pathgrad.render(scene, params, spp=spp, seed=seed + i, sensor=i),
                           axis=None))
    g = np.array(dr.grad(params[key])).sum(-1)
    dr.disable_grad(params[key])
    return g > 1e-3 * g.max()


def texel_rmse(tex: np.ndarray, truth: np.ndarray, mask: np.ndarray) -> float:
    """Root mean square texel error over the texels in ``mask`` (all channels)."""
    return float(np.sqrt(np.mean(np.square(tex - truth)[mask])))


def show_texture(tex: np.ndarray) -> np.ndarray:
    """The texture as shown in the figure: unfolded, wall above floor."""
    return np.flipud(np.asarray(tex))


learning_rate = _common.learning_rate   # (the torch example imports it from here)


def image_mse(img, target):
    return dr.mean(dr.square(img - target), axis=None)


def extra_flags(ap):
    ap.add_argument("--texels", type=int,
                    help="texture width = height in texels (default 64, --fast 32)")


def main(argv=None) -> dict:
    args = _common.parse_args(__doc__.split("\n\n")[0], argv,
                              full=dict(iters=200, spp=16, res=128, lr=0.02, texels=64),
                              fast=dict(iters=80, spp=16, res=64, lr=0.04, texels=32),
                              extra=extra_flags)
    n, views = args.texels, (3 if args.fast else 4)
    spp_show = 64 if args.fast else 256      # targets and the displayed renders

    truth = target_texture(n)
    scene = make_scene(truth, args.res, views)
    targets = render_views(scene, spp=spp_show, seed=args.seed * 100000 + 99000)
    mask = seen_texels(scene, seed=args.seed * 100000 + 98000)

    # start from uniform grey
    params = pathgrad.parameters(scene, KEY, enable_grad=False)
    grey = np.full_like(truth, 0.5)
    opt = mi.ad.Adam(lr=args.lr)
    opt[KEY] = mi.TensorXf(grey)
    params.update(opt)
    initial_imgs = render_views(scene, spp=spp_show, seed=args.seed * 100000 + 97000)

    run = _common.Run(NAME, args, total=args.iters)
    for it in range(args.iters):
        opt.set_learning_rate(learning_rate(args.lr, it, args.iters))
        error = texel_rmse(np.array(opt[KEY]), truth, mask)   # of the texels rendered now
        total = 0.0
        for i in range(views):
            img = pathgrad.render(scene, params, spp=args.spp, sensor=i,
                                  seed=args.seed * 100000 + it * views + i)
            loss = image_mse(img, targets[i])
            dr.backward(loss / views)
            total += loss.array[0] / views
        opt.step()
        opt[KEY] = dr.clip(opt[KEY], 0.0, 1.0)
        params.update(opt)
        run.log(total, error)

    recovered = np.array(opt[KEY])
    final_imgs = render_views(scene, spp=spp_show, seed=args.seed * 100000 + 96000)
    write_exr(run.path("recovered_texture.exr"), recovered)
    write_png(run.path("recovered_texture.png"), recovered)
    write_png(run.path("target_texture.png"), truth)
    rows = [[targets[i], initial_imgs[i], final_imgs[i]] for i in range(views)]
    rows.append([show_texture(truth), show_texture(grey), show_texture(recovered)])
    return run.finish(
        rows=rows, row_titles=CAMERA_NAMES[:views] + ["texture"],
        param_label="texel RMSE",
        results={"texels": n, "views": views, "spp_target": spp_show,
                 "seen_texel_fraction": float(mask.mean()),
                 "texel_rmse_recovered": texel_rmse(recovered, truth, mask),
                 "files": ["comparison.png", "loss.png", "results.json",
                           "recovered_texture.exr", "recovered_texture.png",
                           "target_texture.png"]})


if __name__ == "__main__":
    main()
