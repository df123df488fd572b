"""The work of one process in a multi-view optimisation step: render a set of
views of one scene, compare them with their target images, and return the
gradient of the loss with respect to scene parameter arrays.

:class:`ViewRenderer` is what :class:`pathgrad.MultiViewProblem` runs in
its own process and what each Ray actor of :mod:`pathgrad.distributed` runs
for its shard of the views. Everything it receives and returns is plain
numpy (flat ``float32`` arrays by scene key), so the same calls work across
processes and machines, and the gradient of a view depends only on the
parameter values, the step, the view and the seed (:func:`view_seed`), not
on which process renders it.

**Frozen steps** (``frozen=True``): the renders and the one backward pass
of a step's views are recorded once with ``dr.freeze`` and replayed at
later steps with the same views, which skips the Python tracing of the
renderer (measured in ``benchmarks/multiview.py``). Parameter values, seeds
and targets are inputs of the recording. What a render decides on the host
is part of the recording's key (:meth:`ViewRenderer.replay_key`), so a
change re-records instead of replaying stale kernels: the views, the
integrator's settings and default sample budgets, every scene parameter
held as a host number or transform (an area light's pose, a film size),
and the identity of every mesh's vertex and face buffers (a mesh moved,
deformed or remeshed by the caller: its acceleration structure is rebuilt
outside the recording). Each recording is checked against an unfrozen step
twice (when it is made and at its first replay); a disagreement beyond the
rounding of atomic adds switches freezing off with a warning.

Frozen steps need the optimised parameters to be values the kernels read
directly (RGB reflectances, radiances, intensities). Geometry and the
camera are refused: on Mitsuba 3.9.1 an acceleration structure cannot be
rebuilt inside a recording (the process aborts), and a replay after it was
rebuilt outside traces against the old one (measured: a primal image off
by up to 0.85 after scaling a sphere by 20%, and gradients off by orders of
magnitude, with Mitsuba's own ``prb`` too). Tensors (bitmap textures,
environment maps) are refused too: ``params.update()`` builds a texture
object from them outside the recording, whose data is then a separate input
of it, and the recorded gradient stops there (measured: zero). Such
problems run unfrozen.
"""

from __future__ import annotations

import time
import warnings
from typing import Callable, Mapping, Sequence

import drjit as dr
import mitsuba as mi
import numpy as np

from ._variant import ensure_variant
from . import checks, poses

__all__ = ["ViewRenderer", "view_seed", "LOSSES", "flat_values", "unflatten"]


def _l2(img, target):
    return dr.mean(dr.square(img - target), axis=None)


def _l1(img, target):
    return dr.mean(dr.abs(img - target), axis=None)


#: image losses by name: mean over pixels and channels of the squared or
#: absolute difference (image units squared / image units)
LOSSES = {"l2": _l2, "l1": _l1}


def view_seed(seed: int, step: int, view: int) -> int:
    """The render seed of ``view`` at optimisation ``step`` of a run seeded
    ``seed``: a 32-bit hash of the three, so every (step, view) pair draws
    its own random numbers, reproducibly, in whatever process renders it."""
    h = (int(seed) * 0x9E3779B1 + int(step) * 0x85EBCA77 + int(view) * 0xC2B2AE3D) & 0xFFFFFFFF
    for _ in range(2):   # (two rounds of a murmur-style finaliser)
        h ^= h >> 16
        h = (h * 0x7FEB352D) & 0xFFFFFFFF
        h ^= h >> 15
        h = (h * 0x846CA68B) & 0xFFFFFFFF
    return h ^ (h >> 16)


def flat_values(value) -> np.ndarray:
    """A scene parameter's value as a flat ``float32`` numpy array (detached)."""
    if isinstance(value, mi.TensorXf):
        return np.array(dr.detach(value.array), np.float32).ravel()
    return np.array(dr.ravel(dr.detach(value)), np.float32).ravel()


def unflatten(like, flat: np.ndarray):
    """``flat`` (numpy) as a Dr.Jit value of the type and shape of ``like``."""
    flat = np.ascontiguousarray(flat, np.float32).ravel()
    if isinstance(like, mi.TensorXf):
        return mi.TensorXf(flat.reshape(like.shape))
    if dr.depth_v(like) == 1:
        return type(like)(flat)
    return dr.unravel(type(like), mi.Float(flat))


def resolve_loss(loss) -> Callable:
    """A loss function ``(image, target) -> scalar`` from a name of
    :data:`LOSSES` or a callable."""
    if callable(loss):
        return loss
    if loss not in LOSSES:
        raise ValueError(f"unknown loss {loss!r}: use one of {sorted(LOSSES)} or a function "
                         "(image, target) -> scalar (a Dr.Jit Float)")
    return LOSSES[loss]


class ViewRenderer:
    """A scene, the parameters being optimised and the target images of some
    of its views; :meth:`gradient` renders views and returns the loss and its
    gradient.

    Parameters
    ----------
    scene : mi.Scene, path or dict
        The scene (see :func:`pathgrad.load_scene`).
    keys : list of str
        Scene parameter keys that receive gradients.
    targets : dict
        ``{sensor index: image}``, each a (H, W, C) array matching that
        sensor's film (numpy or ``mi.TensorXf``).
    loss : str or callable
        ``'l2'`` (default), ``'l1'``, or ``f(image, target) -> Float``.
    spp : int
        Samples per pixel of each view's render (primal and gradient).
    render_kwargs : dict
        Further settings of :func:`pathgrad.render` (``max_depth``,
        ``boundary_spp``, ...).
    frozen : bool or "auto"
        Record a step's renders and backward pass once and replay them at
        later steps with the same views (see the module docstring);
        ``True`` raises ValueError for keys that cannot be frozen
        (:meth:`unfreezable_keys`), ``"auto"`` freezes only without them.
    """

    def __init__(self, scene, keys: Sequence[str], targets: Mapping[int, object],
                 loss="l2", spp: int = 4, render_kwargs: Mapping | None = None,
                 frozen: bool | str = False):
        ensure_variant()
        from .api import load_scene, parameters
        self.scene = load_scene(scene)
        self.keys = list(keys)
        self.params = parameters(self.scene, self.keys)
        self.loss_fn = resolve_loss(loss)
        self.spp = int(spp)
        self.render_kwargs = dict(render_kwargs or {})
        sensors = self.scene.sensors()
        self.targets = {}
        for i, t in targets.items():
            i = int(i)
            if not 0 <= i < len(sensors):
                raise IndexError(f"target given for view {i}, but the scene has "
                                 f"{len(sensors)} sensor(s)")
            self.targets[i] = self._target(sensors[i], i, t)
        #: seconds of the last :meth:`gradient` call (render + backward)
        self.last_seconds = 0.0
        if frozen not in (True, False, "auto"):
            raise ValueError(f"frozen must be True, False or 'auto', got {frozen!r}")
        refused = self.unfreezable_keys()
        self.frozen = (not refused) if frozen == "auto" else bool(frozen)
        if self.frozen:
            if refused:
                raise ValueError(
                    f"frozen steps cannot optimise {refused}: geometry and the camera need an "
                    "acceleration structure that Mitsuba 3.9.1 cannot rebuild inside a "
                    "recording (a replay would trace against the old one), and a texture's "
                    "gradient stops at the texture object built from it. Use frozen=False "
                    "(or 'auto') for shape, pose, camera and texture problems.")
            # (a few view sets kept: each batch of views is its own recording)
            self._frozen_step = dr.freeze(self._views_gradient, state_fn=self._state, limit=8)
            self._warm = set()
            #: view sets whose recording is still checked against an unfrozen step
            self._unverified: dict = {}

    def unfreezable_keys(self) -> list[str]:
        """Optimised keys that a frozen step cannot handle: those that move a
        mesh, a shape or the camera (vertex positions, transforms, a sensor's
        field of view), and tensors (bitmap textures, environment maps: the
        texture object built from them by ``params.update()`` is a separate
        input of the recording, so the recorded gradient stops there; measured:
        zero)."""
        return [k for k in self.keys if k.endswith("vertex_positions")
                or poses.is_transform(self.params[k]) or checks.is_camera_parameter(self.params, k)
                or isinstance(self.params[k], mi.TensorXf)]

    @staticmethod
    def _target(sensor, i: int, t) -> mi.TensorXf:
        arr = np.asarray(t, np.float32)
        size = sensor.film().crop_size()
        if arr.ndim != 3 or arr.shape[:2] != (size[1], size[0]):
            raise ValueError(f"the target image of view {i} has shape {arr.shape}, but that "
                             f"sensor's film is {size[0]}x{size[1]} (width x height): give a "
                             f"({size[1]}, {size[0]}, channels) image")
        if not np.all(np.isfinite(arr)):
            raise ValueError(f"the target image of view {i} holds NaN or infinite values")
        return mi.TensorXf(arr)

    def set_values(self, values: Mapping[str, np.ndarray]) -> dict:
        """Write flat parameter values (numpy, by key) into the scene as
        fresh gradient-enabled leaves; returns the leaves by key."""
        leaves = {}
        for key in self.keys:
            if key not in values:
                raise KeyError(f"no value given for the optimised parameter '{key}'")
            leaf = unflatten(self.params[key], values[key])
            dr.enable_grad(leaf)
            self.params[key] = leaf
            leaves[key] = leaf
        self.params.update()
        return leaves

    def gradient(self, values: Mapping[str, np.ndarray], step: int, views: Sequence[int],
                 seed: int = 0, weight: float = 1.0) -> tuple[float, dict]:
        """Render ``views`` with the parameters set to ``values`` and return
        ``(loss, {key: dloss/dvalue})``, the loss summed over the views times
        ``weight`` (e.g. 1 / batch size), gradients as flat ``float32`` numpy
        arrays like ``values``. Each view is rendered with the seed
        :func:`view_seed` ``(seed, step, view)``."""
        t0 = time.perf_counter()
        for i in views:
            if int(i) not in self.targets:
                raise KeyError(f"view {i} has no target image in this renderer "
                               f"(it holds views {sorted(self.targets)})")
        if not views:
            return 0.0, {k: np.zeros_like(values[k], np.float32) for k in self.keys}
        leaves = self.set_values(values)
        if self.frozen:
            out = self._frozen_gradient(leaves, values, step, views, seed, weight)
        else:
            seeds = [view_seed(seed, step, int(i)) for i in views]
            out = _numpy(*self._views_gradient(self.scene, leaves, seeds, [int(i) for i in views],
                                               [self.targets[int(i)] for i in views], weight),
                         self.keys)
        self.last_seconds = time.perf_counter() - t0
        return out

    # ------------------------------------------------------------- frozen steps
    def _view_loss(self, scene, seed, view: int, target, weight):
        """``weight`` times the loss of one view."""
        from .api import render
        img = render(scene, self.params, spp=self.spp, sensor=view, seed=seed,
                     **self.render_kwargs)
        return weight * self.loss_fn(img, target)

    def _views_gradient(self, scene, leaves, seeds, views, targets, weight):
        """Loss of ``views`` and its gradient ``[per leaf]``, with one
        backward pass (a pass per view would clear the AD edges from the
        leaves to derived data, such as a texture, after the first view).
        The unit that frozen steps record: every Dr.Jit value it reads is an
        argument (``self`` is not traversed by ``dr.freeze``)."""
        loss = 0
        for s, v, t in zip(seeds, views, targets):
            loss = loss + self._view_loss(scene, s, v, t, weight)
        dr.backward(loss)
        return loss, [dr.grad(leaves[k]) for k in self.keys]

    def replay_key(self, views) -> tuple:
        """What the host decides in a render of ``views``: a frozen step is
        re-recorded when this changes (see the module docstring)."""
        integ = self.scene.integrator()
        ratios = tuple(sorted(getattr(integ, "_ratios", {}).items()))
        host = []
        for k, v in mi.traverse(self.scene).items():
            if poses.is_transform(v):      # its variables (a write makes new ones): no host read
                host.append((k, tuple(x.index for row in v.matrix for x in row)))
            elif not dr.is_array_v(v) or not dr.is_jit_v(v):
                host.append((k, repr(v)))
        buffers = [(m.id(), m.vertex_positions_buffer().index, m.faces_buffer().index)
                   for m in self.scene.shapes() if isinstance(m, mi.Mesh)]
        return (tuple(views), str(integ), ratios, tuple(host), tuple(buffers), self.spp,
                tuple(sorted(self.render_kwargs.items())))

    def _state(self, scene, leaves, seeds, views, targets, weight):
        return self.replay_key(views)

    def _frozen_gradient(self, leaves, values, step, views, seed, weight):
        views = tuple(int(i) for i in views)
        seeds = []
        for i in views:
            s = mi.UInt32(view_seed(seed, step, i))
            dr.make_opaque(s)
            seeds.append(s)
        w = mi.Float(weight)
        dr.make_opaque(w)
        targets = [self.targets[i] for i in views]
        if views not in self._warm:
            # the first step with these views runs unfrozen: it fills the caches
            # (default budgets' pilot, edge tables) that a recording must not build
            self._warm.add(views)
            return _numpy(*self._views_gradient(self.scene, leaves, seeds, views, targets, w),
                          self.keys)
        before = self._frozen_step.n_recordings
        out = _numpy(*self._frozen_step(self.scene, leaves, seeds, views, targets, w), self.keys)
        if self._frozen_step.n_recordings > before:
            self._unverified[views] = 2          # this recording and its first replay
        if self._unverified.get(views, 0) > 0:
            self._unverified[views] -= 1
            ref = self._unfrozen(values, step, views, seed, weight)
            bad = _disagree(out, ref)
            if bad:
                warnings.warn(
                    f"pathgrad: a frozen step's {bad} differs from the unfrozen one (step "
                    f"{step}, views {list(views)}); frozen steps are switched off for this "
                    f"renderer (parameters {self.keys}). Please report the scene.",
                    RuntimeWarning, stacklevel=3)
                self.frozen = False
                return ref
        return out

    def _unfrozen(self, values, step, views, seed, weight):
        """The same step without the recording (fresh leaves)."""
        leaves = self.set_values(values)
        seeds = [view_seed(seed, step, i) for i in views]
        return _numpy(*self._views_gradient(self.scene, leaves, seeds, views,
                                            [self.targets[i] for i in views], weight), self.keys)

    @property
    def recordings(self) -> int:
        """How often frozen steps were recorded (0 if they never were)."""
        frozen_step = getattr(self, "_frozen_step", None)
        return frozen_step.n_recordings if frozen_step is not None else 0


def _numpy(loss, grads, keys) -> tuple[float, dict]:
    """(loss, [gradient per key]) as (float, {key: flat numpy})."""
    dr.eval(loss, grads)
    return float(np.asarray(loss).ravel()[0]), {k: flat_values(g) for k, g in zip(keys, grads)}


def _disagree(out, ref, rtol: float = 1e-4) -> str:
    """'' when two (loss, gradients) results agree to ``rtol`` of their
    norms (float32 atomic adds in another order), else what differs."""
    if abs(out[0] - ref[0]) > rtol * max(abs(ref[0]), 1e-30):
        return "loss"
    for k, g in ref[1].items():
        if np.linalg.norm(out[1][k] - g) > rtol * max(np.linalg.norm(g), 1e-30):
            return f"gradient of '{k}'"
    return ""
