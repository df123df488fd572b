"""Train a neural texture with PyTorch through pathgrad's differentiable renderer.

A small PyTorch MLP maps texture coordinates (u, v) to an albedo: random
Fourier features of uv, two hidden layers of 64 ReLU units and a sigmoid
output. Evaluated at the texel centres it gives the bitmap texture of the
textured corner of ``texture_recovery.py`` (same scene, lights, cameras and
target texture). The texels enter the scene through a function decorated
with ``@dr.wrap(source='torch', target='drjit')``, which writes them into
the scene, renders every view with ``pathgrad.render`` and returns the
images as torch tensors; the loss (mean squared image error over the views)
and the optimiser (``torch.optim.Adam``) live in PyTorch, and
``loss.backward()`` runs pathgrad's reverse-mode pass and then the MLP's.
The last layer starts at zero, so the first texture is uniform grey; the
learning rate decays to a tenth over the second half. The parameter error
is the RMSE of the predicted texels against the true ones (over the texels
some view sees).

    python examples/neural_texture_torch.py          # 64x64 texels, 4 views of 128x128, ~2.5 min
    python examples/neural_texture_torch.py --fast   # 32x32 texels, 3 views of 64x64, ~15-35 s

Other flags: --iters --spp --res --lr --texels --seed --out --quiet (--help).
Needs PyTorch: pip install 'pathgrad[torch]' (or pip install torch==2.13.0).

Writes to out/neural_texture_torch/ (or --out):
  comparison.png, loss.png, results.json   as every example (last row of the
                                           comparison: the textures, wall above floor)
  mlp.pt                    the trained MLP (torch.save of its state_dict,
                            Fourier matrix included; see make_mlp)
  predicted_texture.exr     the texels it predicts (linear float, H x W x 3,
  predicted_texture.png     bitmap layout: row 0 is v = 0), EXR and sRGB PNG
  predicted_texture_4x.png  the MLP sampled at 4x the texel resolution (it is
                            a continuous function of uv)
  target_texture.png        the true texture
"""
from __future__ import annotations

import math
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _common  # noqa: E402
import texture_recovery as tr  # noqa: E402  (scene, target texture, texel mask)

import drjit as dr  # noqa: E402

import pathgrad  # noqa: E402
from pathgrad.imageio_utils import write_exr, write_png  # noqa: E402

try:
    import torch
except ImportError:  # reported by main(), so that the module still imports
    torch = None

NAME = "neural_texture_torch"
KEY = tr.KEY
TORCH_MISSING = ("neural_texture_torch.py needs PyTorch, which is not installed: "
                 "pip install 'pathgrad[torch]'  (or: pip install torch==2.13.0)")


def make_mlp(seed: int, features: int = 64, sigma: float = 6.0, hidden: int = 64):
    """The neural texture: uv (N, 2) in [0, 1]^2 -> albedo (N, 3) in (0, 1).

    Random Fourier features [sin 2pi uv B, cos 2pi uv B] (B: 2 x ``features``,
    entries ~ N(0, sigma^2), kept as a buffer so ``state_dict`` holds it),
    then Linear-ReLU-Linear-ReLU-Linear and a sigmoid. The last layer starts
    at zero: the initial texture is uniform 0.5 grey. Initialised from
    ``seed`` without touching torch's global random state."""
    nn = torch.nn

    class NeuralTexture(nn.Module):
        def __init__(self):
            super().__init__()
            self.register_buffer("B", sigma * torch.randn(2, features))
            self.net = nn.Sequential(nn.Linear(2 * features, hidden), nn.ReLU(),
                                     nn.Linear(hidden, hidden), nn.ReLU(),
                                     nn.Linear(hidden, 3))
            nn.init.zeros_(self.net[-1].weight)
            nn.init.zeros_(self.net[-1].bias)

        def forward(self, uv):
            x = 2 * math.pi * uv @ self.B
            return torch.sigmoid(self.net(torch.cat([torch.sin(x), torch.cos(x)], -1)))

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return NeuralTexture()


def texel_centres(n: int):
    """uv of the texel centres of an n x n bitmap, (n * n, 2), in bitmap
    order: row i has v = (i + 0.5) / n, column j has u = (j + 0.5) / n."""
    c = (torch.arange(n, dtype=torch.float32) + 0.5) / n
    v, u = torch.meshgrid(c, c, indexing="ij")
    return torch.stack([u, v], -1).reshape(-1, 2)


def main(argv=None) -> dict:
    args = _common.parse_args(__doc__.split("\n\n")[0], argv,
                              full=dict(iters=200, spp=16, res=128, lr=5e-3, texels=64),
                              fast=dict(iters=80, spp=16, res=64, lr=1e-2, texels=32),
                              extra=tr.extra_flags)
    if torch is None:
        print(TORCH_MISSING, file=sys.stderr)
        raise SystemExit(2)
    n, views = args.texels, (3 if args.fast else 4)
    spp_show = 64 if args.fast else 256

    truth = tr.target_texture(n)
    scene = tr.make_scene(truth, args.res, views)
    targets = tr.render_views(scene, spp=spp_show, seed=args.seed * 100000 + 99000)
    targets_t = [torch.from_numpy(np.array(t)) for t in targets]
    mask = tr.seen_texels(scene, seed=args.seed * 100000 + 98000)
    params = pathgrad.parameters(scene, KEY, enable_grad=False)

    @dr.wrap(source="torch", target="drjit")
    def render(texels, seed: int, spp: int):
        """texels (n, n, 3) -> one image per view, differentiable in texels."""
        params[KEY] = texels
        params.update()
        p = params if dr.grad_enabled(texels) else None   # (None under torch.no_grad())
        return tuple(pathgrad.render(scene, p, spp=spp, seed=seed + i, sensor=i)
                     for i in range(views))

    model = make_mlp(args.seed)
    uv = texel_centres(n)
    opt = torch.optim.Adam(model.parameters(), lr=args.lr)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda it: tr.learning_rate(1.0, it, args.iters))

    def predict():
        return model(uv).reshape(n, n, 3)

    with torch.no_grad():
        initial_tex = predict().numpy().copy()
    initial_imgs = render(torch.from_numpy(initial_tex), args.seed * 100000 + 97000, spp_show)

    run = _common.Run(NAME, args, total=args.iters)
    for it in range(args.iters):
        opt.zero_grad()
        texels = predict()
        imgs = render(texels, args.seed * 100000 + it * views, args.spp)
        loss = sum(torch.mean((img - t) ** 2) for img, t in zip(imgs, targets_t)) / views
        loss.backward()
        opt.step()
        sched.step()
        run.log(loss.item(), tr.texel_rmse(texels.detach().numpy(), truth, mask))

    with torch.no_grad():
        predicted = predict().numpy().copy()
        fine = model(texel_centres(4 * n)).reshape(4 * n, 4 * n, 3).numpy()
    final_imgs = render(torch.from_numpy(predicted), args.seed * 100000 + 96000, spp_show)
    torch.save(model.state_dict(), run.path("mlp.pt"))
    write_exr(run.path("predicted_texture.exr"), predicted)
    write_png(run.path("predicted_texture.png"), predicted)
    write_png(run.path("predicted_texture_4x.png"), fine)
    write_png(run.path("target_texture.png"), truth)
    rows = [[targets[i], initial_imgs[i].numpy(), final_imgs[i].numpy()] for i in range(views)]
    rows.append([tr.show_texture(truth), tr.show_texture(initial_tex), tr.show_texture(predicted)])
    return run.finish(
        rows=rows, row_titles=tr.CAMERA_NAMES[:views] + ["texture"],
        param_label="texel RMSE",
        results={"texels": n, "views": views, "spp_target": spp_show,
                 "mlp_parameters": sum(p.numel() for p in model.parameters()),
                 "seen_texel_fraction": float(mask.mean()),
                 "texel_rmse_predicted": tr.texel_rmse(predicted, truth, mask),
                 "files": ["comparison.png", "loss.png", "results.json", "mlp.pt",
                           "predicted_texture.exr", "predicted_texture.png",
                           "predicted_texture_4x.png", "target_texture.png"]})


if __name__ == "__main__":
    main()
