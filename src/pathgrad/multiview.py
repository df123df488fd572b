"""Multi-view inverse rendering: one scene, many sensors with target images,
one loss, one optimiser (:class:`MultiViewProblem`).

A step renders the views (all, or a random batch), accumulates the gradient
of the mean image loss over them, and steps the optimiser. The views are
rendered in this process (``workers=0``) or by Ray actors that each own a
shard of them (``workers=N``, :mod:`pathgrad.distributed`); the script is
the same either way. Every view of every step has its own seed
(:func:`pathgrad.views.view_seed`), so a run is reproducible and its
gradients do not depend on how the views are sharded.

The optimised *variables* need not be scene parameters: ``to_params`` maps
them (differentiably) to scene parameter values, e.g. the large-steps
parametrisation of vertex positions (:mod:`pathgrad.largesteps`) or a
clamp of an albedo. The driver evaluates ``to_params``, sends the detached
values to the renderers, gets back d loss / d value, and back-propagates
that through ``to_params`` into the variables before the optimiser step.
"""

from __future__ import annotations

import time
from typing import Callable, Mapping, Sequence

import drjit as dr
import mitsuba as mi
import numpy as np

from ._variant import ensure_variant
from .views import ViewRenderer, flat_values

__all__ = ["MultiViewProblem"]


class MultiViewProblem:
    """An optimisation over many views of one scene.

    Parameters
    ----------
    scene : mi.Scene, str, dict or callable
        The scene: loaded, an XML path, a scene dict, or a function building
        it. With ``workers > 0`` a loaded scene cannot be sent to the
        workers: pass one of the others.
    targets : list, dict or callable
        Target images (H, W, C; numpy or ``mi.TensorXf``): a list, one per
        entry of ``views``; a dict ``{sensor index: image}``; or a function
        ``view -> image`` (a loader, called once per view).
    variables : dict
        ``{name: initial value}`` of the optimised variables (Dr.Jit arrays
        or numpy, flat).
    to_params : callable, optional
        ``to_params(variables) -> {scene key: value}``, differentiable in
        the variables. Default: the variables *are* scene parameters (their
        names are scene keys).
    views : list of int, optional
        Sensor indices (default: ``range(len(targets))`` for a list, the
        keys of a dict).
    loss : str or callable
        ``'l2'`` (default), ``'l1'``, or ``f(image, target) -> Float``; the
        step's loss is its mean over the step's views.
    optimizer : mi.ad.Optimizer, optional
        Default ``mi.ad.Adam(lr=lr)``. The variables are put into it.
    lr : float or dict
        Learning rate (of the default optimiser), or ``{name: rate}``.
    spp : int
        Samples per pixel of each view's render.
    batch : int, optional
        Views rendered per step, drawn at random without repetition (seeded
        by ``seed`` and the step); default: every view at every step.
    seed : int
        Seed of the run (render seeds and batches derive from it).
    workers : int
        0: render in this process; N > 0: N Ray actors
        (:class:`pathgrad.distributed.RayViews`).
    address : str, optional
        Ray cluster address (default: the running or a new local cluster).
    worker_cpus : float
        CPUs per Ray actor (its Dr.Jit thread pool too), default 1.
    frozen : bool or "auto"
        Record a step's renders and backward pass once and replay them at
        later steps with the same views (``dr.freeze``; see
        :mod:`pathgrad.views`). ``"auto"`` (default): when every view is
        rendered at every step (no ``batch``: each batch would be a new
        recording) and the optimised parameters are values the kernels read
        directly (reflectances, radiances; not geometry, the camera or
        textures); ``True`` raises for parameters that cannot be frozen.
    progress : bool
        A progress bar in :meth:`run`.
    render_kwargs
        Further :func:`pathgrad.render` settings (``max_depth``,
        ``boundary_spp``, ``shadow``, ...), the same for every view.

    Attributes
    ----------
    loss_history : list of float
        The loss of every step.
    step_seconds : list of float
        Wall time of every step (render, backward, reduce and optimiser).
    """

    def __init__(self, scene, targets, variables: Mapping, to_params: Callable | None = None, *,
                 views: Sequence[int] | None = None, loss="l2", optimizer=None, lr=0.01,
                 spp: int = 4, batch: int | None = None, seed: int = 0, workers: int = 0,
                 address: str | None = None, worker_cpus: float = 1.0,
                 frozen: bool | str = "auto", progress: bool = True,
                 **render_kwargs):
        ensure_variant()
        self.views, self._targets = _views_and_targets(targets, views)
        if batch is not None and not 1 <= int(batch) <= len(self.views):
            raise ValueError(f"batch must be between 1 and the number of views "
                             f"({len(self.views)}), got {batch}")
        self.batch = None if batch is None else int(batch)
        self.seed, self.spp, self.progress = int(seed), int(spp), bool(progress)
        self.to_params = to_params or (lambda v: dict(v))
        self.optimizer = optimizer if optimizer is not None else mi.ad.Adam(
            lr=lr if not isinstance(lr, Mapping) else 0.01)
        for name, value in variables.items():
            self.optimizer[name] = value if dr.is_array_v(value) else mi.Float(
                np.asarray(value, np.float32).ravel())
        if isinstance(lr, Mapping):
            self.optimizer.set_learning_rate(dict(lr))
        self.names = list(variables)
        self.keys = list(self._param_values())
        if frozen == "auto" and self.batch is not None:
            frozen = False      # every new batch of views would be a new recording
        self._source, self.workers = scene, int(workers)
        self._local_scene = scene if isinstance(scene, mi.Scene) else None
        if self.workers > 0:
            from .distributed import RayViews
            self.renderer = RayViews(scene, self.keys, self._targets, workers=self.workers,
                                     loss=loss, spp=self.spp, render_kwargs=render_kwargs,
                                     address=address, cpus_per_worker=worker_cpus,
                                     frozen=frozen)
        else:
            self.renderer = ViewRenderer(self._scene(), self.keys, self._targets, loss,
                                         self.spp, render_kwargs, frozen)
        self.loss_history: list[float] = []
        self.step_seconds: list[float] = []
        self.step_count = 0

    # ------------------------------------------------------------- steps
    def batch_views(self, step: int) -> list[int]:
        """The views rendered at ``step`` (all, or the step's random batch)."""
        if self.batch is None:
            return list(self.views)
        rng = np.random.default_rng([self.seed, step, 0x5EED])
        return sorted(int(v) for v in rng.choice(self.views, self.batch, replace=False))

    def gradient(self, step: int | None = None) -> tuple[float, dict]:
        """Loss and gradient ``{scene key: flat numpy array}`` of ``step``
        (default: the next one) at the current variables, without stepping."""
        step = self.step_count if step is None else int(step)
        views = self.batch_views(step)
        values = {k: flat_values(v) for k, v in self._param_values().items()}
        return self.renderer.gradient(values, step, views, self.seed, 1.0 / len(views))

    def step(self) -> float:
        """One optimisation step; returns its loss (before the update)."""
        t0 = time.perf_counter()
        x = self._param_values()                     # attached to the variables
        values = {k: flat_values(v) for k, v in x.items()}
        views = self.batch_views(self.step_count)
        loss, grads = self.renderer.gradient(values, self.step_count, views, self.seed,
                                             1.0 / len(views))
        bad = [k for k, g in grads.items() if not np.all(np.isfinite(g))]
        if bad or not np.isfinite(loss):
            raise FloatingPointError(
                f"step {self.step_count}: the loss ({loss}) or the gradient of {bad} is not "
                "finite; lower the learning rate or check the targets")
        # d loss / d variables = (d x / d variables)^T g: back-propagate g through to_params
        surrogate = 0
        for k, v in x.items():
            flat = v.array if isinstance(v, mi.TensorXf) else dr.ravel(v)
            surrogate = surrogate + dr.sum(flat * mi.Float(grads[k]))
        if dr.grad_enabled(surrogate):
            dr.backward(surrogate)
        self.optimizer.step()
        self.loss_history.append(float(loss))
        self.step_seconds.append(time.perf_counter() - t0)
        self.step_count += 1
        return float(loss)

    def run(self, steps: int, callback: Callable | None = None) -> list[float]:
        """``steps`` steps with a progress bar (loss and seconds per step);
        ``callback(problem)`` after each. Returns the loss history."""
        from tqdm.auto import tqdm
        bar = tqdm(total=int(steps), desc="multi-view", disable=not self.progress,
                   dynamic_ncols=True)
        for _ in range(int(steps)):
            loss = self.step()
            bar.set_postfix({"loss": f"{loss:.3e}", "s/step": f"{self.step_seconds[-1]:.2f}"},
                            refresh=False)
            bar.update(1)
            if callback is not None:
                callback(self)
        bar.close()
        return self.loss_history

    # ------------------------------------------------------------- results
    def variables(self) -> dict:
        """The current variables (detached Dr.Jit arrays)."""
        return {n: dr.detach(self.optimizer[n]) for n in self.names}

    def parameter_values(self) -> dict:
        """The current scene parameter values (flat numpy, by key)."""
        return {k: flat_values(v) for k, v in self._param_values().items()}

    def scene(self) -> mi.Scene:
        """A scene in this process holding the current parameter values (for
        previews and final renders; loaded from the source once)."""
        from .views import unflatten
        scene = self._scene()
        params = mi.traverse(scene)
        for k, v in self.parameter_values().items():
            params[k] = unflatten(params[k], v)
        params.update()
        return scene

    def close(self) -> None:
        """Stop the workers (if any)."""
        if hasattr(self.renderer, "close"):
            self.renderer.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # ------------------------------------------------------------- helpers
    def _param_values(self) -> dict:
        with dr.resume_grad():
            x = self.to_params({n: self.optimizer[n] for n in self.names})
        if not isinstance(x, Mapping) or not x:
            raise TypeError("to_params must return a non-empty dict {scene key: value}, got "
                            f"{type(x).__name__}")
        return dict(x)

    def _scene(self) -> mi.Scene:
        if self._local_scene is None:
            from .api import load_scene
            src = self._source() if callable(self._source) else self._source
            self._local_scene = load_scene(src)
        return self._local_scene


def _views_and_targets(targets, views) -> tuple[list[int], dict]:
    """The sensor indices and ``{view: numpy image}``."""
    if callable(targets):
        if views is None:
            raise ValueError("targets is a loader function: give views=[sensor indices]")
        views = [int(v) for v in views]
        return views, {v: np.asarray(targets(v), np.float32) for v in views}
    if isinstance(targets, Mapping):
        views = sorted(int(v) for v in targets) if views is None else [int(v) for v in views]
        missing = [v for v in views if v not in targets]
        if missing:
            raise ValueError(f"views {missing} have no entry in targets")
        return views, {v: np.asarray(targets[v], np.float32) for v in views}
    targets = list(targets)
    views = list(range(len(targets))) if views is None else [int(v) for v in views]
    if len(views) != len(targets):
        raise ValueError(f"{len(targets)} target images for {len(views)} views: give one "
                         "target per view")
    if not views:
        raise ValueError("no views: give at least one target image")
    return views, {v: np.asarray(t, np.float32) for v, t in zip(views, targets)}
