"""What every example script shares: command-line flags, a progress bar with
the current loss, and the outputs people look at (target / initial / final
images side by side, loss and parameter-error plots, a results.json).

Not part of the pathgrad API: the examples import it as a sibling module.
"""
from __future__ import annotations

import argparse
import json
import os
import time

import numpy as np

MPL_MISSING = ("matplotlib is needed for the plots of the examples: "
               "pip install 'pathgrad[examples]' (or: pip install matplotlib)")


def parse_args(description: str, argv=None, *, full: dict, fast: dict, extra=None):
    """Parse the flags every example takes.

    ``full`` and ``fast`` give the defaults of ``iters``, ``spp``, ``res``
    and ``lr`` for a real run and for ``--fast`` (the quick run the test
    suite does); flags given on the command line win over both.
    ``extra(parser)`` adds the example's own flags. ``full`` and ``fast``
    may also be functions of the parsed flags returning such a dict (for
    defaults that depend on a mode flag).
    """
    ap = argparse.ArgumentParser(description=description,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    def default(k):
        if callable(full):
            return "depends on the mode"
        return f"default {full[k]}, --fast {fast[k]}"
    ap.add_argument("--iters", type=int, help=f"optimisation steps ({default('iters')})")
    ap.add_argument("--spp", type=int, help=f"samples per pixel of each optimisation render "
                                            f"({default('spp')})")
    ap.add_argument("--res", type=int, help=f"image width = height in pixels ({default('res')})")
    ap.add_argument("--lr", type=float, help=f"Adam learning rate ({default('lr')})")
    ap.add_argument("--seed", type=int, default=0,
                    help="seed of the renders and of any random initialisation (default 0); "
                         "the same seed gives the same random numbers (runs that move geometry "
                         "still differ slightly: gradients are summed with atomic adds)")
    ap.add_argument("--out", default=None,
                    help="output folder (default out/<example name>)")
    ap.add_argument("--fast", action="store_true",
                    help="a quick low-resolution run (what the test suite runs)")
    ap.add_argument("--quiet", action="store_true", help="no progress bar")
    if extra is not None:
        extra(ap)
    args = ap.parse_args(argv)
    defaults = fast if args.fast else full
    if callable(defaults):
        defaults = defaults(args)
    for k, v in defaults.items():
        if getattr(args, k, None) is None:
            setattr(args, k, v)
    return args


class Run:
    """Book-keeping of one optimisation: progress bar, history, outputs.

    ``Run(name, args, total=args.iters)`` then ``run.log(loss, param_error)``
    once per step, and ``run.finish(...)`` at the end.
    """

    def __init__(self, name: str, args, total: int):
        from tqdm.auto import tqdm
        self.name = name
        self.out = args.out or os.path.join("out", name)
        os.makedirs(self.out, exist_ok=True)
        self.loss: list[float] = []
        self.param_error: list[float] = []
        self.t0 = time.perf_counter()
        self.bar = tqdm(total=total, desc=name, disable=args.quiet, dynamic_ncols=True,
                        leave=True)
        self.args = args

    def log(self, loss, param_error: float | None = None):
        loss = scalar(loss)
        self.loss.append(loss)
        post = {"loss": f"{loss:.3e}"}
        if param_error is not None:
            self.param_error.append(float(param_error))
            post["param err"] = f"{param_error:.3e}"
        self.bar.set_postfix(post, refresh=False)
        self.bar.update(1)

    def path(self, filename: str) -> str:
        return os.path.join(self.out, filename)

    def finish(self, rows, *, col_titles=("target", "initial", "final"), row_titles=None,
               results: dict | None = None, param_label="parameter error") -> dict:
        """Write ``comparison.png`` (``rows``: one list of images per view, in
        the order of ``col_titles``), ``loss.png`` and ``results.json``;
        return the results (initial / final loss and parameter error, time)."""
        self.bar.close()
        seconds = time.perf_counter() - self.t0
        save_comparison(self.path("comparison.png"), rows, col_titles, row_titles)
        plot_history(self.path("loss.png"), self.loss, self.param_error, param_label)
        res = {"example": self.name, "iters": len(self.loss), "seconds": round(seconds, 2),
               "loss_initial": self.loss[0] if self.loss else None,
               "loss_final": float(np.mean(self.loss[-max(1, len(self.loss) // 10):]))
               if self.loss else None}
        if self.param_error:
            res["param_error_initial"] = self.param_error[0]
            res["param_error_final"] = self.param_error[-1]
        res["args"] = {k: v for k, v in vars(self.args).items()}
        res.update(results or {})
        with open(self.path("results.json"), "w") as fh:
            json.dump(res, fh, indent=2, default=_jsonable)
        print(summary(res))
        print(f"outputs in {self.out}/ (comparison.png, loss.png, results.json, ...)")
        return res


def _jsonable(x):
    if isinstance(x, np.ndarray):
        return x.tolist()
    if isinstance(x, (np.floating, np.integer)):
        return x.item()
    return str(x)


def summary(res: dict) -> str:
    s = (f"{res['example']}: {res['iters']} steps in {res['seconds']:.1f} s, "
         f"loss {res['loss_initial']:.3e} -> {res['loss_final']:.3e}")
    if "param_error_final" in res:
        s += f", parameter error {res['param_error_initial']:.3e} -> {res['param_error_final']:.3e}"
    return s


def learning_rate(lr: float, it: int, iters: int) -> float:
    """``lr`` for the first half of a run of ``iters`` steps, then a cosine
    decay to ``lr / 10`` at the end: smaller late steps average out the Monte
    Carlo noise of the gradients."""
    t = max(0.0, (it - iters / 2) / (iters / 2))
    return lr * (0.1 + 0.9 * 0.5 * (1 + np.cos(np.pi * t)))


def scalar(x) -> float:
    """A Python float from a one-element Dr.Jit array or tensor."""
    return float(np.asarray(x).ravel()[0])


def tonemap(img) -> np.ndarray:
    """Linear RGB -> sRGB in [0, 1] (clipped), as a numpy (H, W, 3) array."""
    from pathgrad.imageio_utils import to_srgb
    return to_srgb(img)


def save_comparison(path: str, rows, col_titles, row_titles=None):
    """A grid of tonemapped images with titles (rows = views)."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:  # pragma: no cover - examples extra missing
        raise SystemExit(MPL_MISSING)
    nr, nc = len(rows), len(rows[0])
    fig, axes = plt.subplots(nr, nc, figsize=(2.4 * nc, 2.4 * nr), squeeze=False)
    for i, row in enumerate(rows):
        for j, img in enumerate(row):
            ax = axes[i][j]
            ax.imshow(tonemap(img) if np.asarray(img).ndim == 3 else img,
                      interpolation="nearest")
            ax.set_xticks([]), ax.set_yticks([])
            if i == 0:
                ax.set_title(col_titles[j], fontsize=10)
            if row_titles is not None and j == 0:
                ax.set_ylabel(row_titles[i], fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_history(path: str, loss, param_error=(), param_label="parameter error"):
    """Loss (and parameter error, when the truth is known) per step, log scale."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:  # pragma: no cover
        raise SystemExit(MPL_MISSING)
    n = 2 if len(param_error) else 1
    fig, axes = plt.subplots(1, n, figsize=(4.2 * n, 3.2), squeeze=False)
    axes[0][0].semilogy(loss, lw=1.2)
    axes[0][0].set_xlabel("step"), axes[0][0].set_ylabel("image loss")
    axes[0][0].grid(alpha=0.3)
    if n == 2:
        axes[0][1].semilogy(param_error, lw=1.2, color="C1")
        axes[0][1].set_xlabel("step"), axes[0][1].set_ylabel(param_label)
        axes[0][1].grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
