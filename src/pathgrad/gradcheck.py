"""``gradcheck``: compare pathgrad's gradients with finite differences.

For a parameter θ, a direction v and a step ε, the reference is the central
difference with common random numbers (the same seed on both sides)

    FD_s = (I(θ + εv; s) - I(θ - εv; s)) / 2ε,

averaged over several seeds s. The forward-mode gradient image (``dr.forward``
from a scalar t with θ = θ₀ + t v) and the reverse-mode derivative of a linear
functional ⟨w, I⟩ (``dr.backward``, then ⟨∂θ, v⟩) are compared with it. The
per-seed spread gives the noise level: with n seeds and d = AD - FD per seed,

    rel_error = ‖mean(d)‖ / ‖mean(FD)‖,   noise = sqrt(Σ_pixels Var[mean(d)]) / ‖mean(FD)‖.

An unbiased estimator gives rel_error ≈ noise. The check passes when
rel_error² ≤ (2·noise)² + tol², so ``tol`` is the systematic error allowed
(e.g. the finite-difference step's own error, reported as the change between
steps ε and 2ε). A zero gradient gives rel_error = 1 and a wrong sign 2: both
fail whenever noise and tol are well below 1.
"""

from __future__ import annotations

import dataclasses
import math

import drjit as dr
import mitsuba as mi
import numpy as np

from . import poses
from .api import load_scene, parameters, render

__all__ = ["gradcheck", "GradcheckReport"]


@dataclasses.dataclass
class GradcheckReport:
    """Result of :func:`gradcheck`. Images have shape (H, W, C), C = colour
    channels (alpha dropped); values are image units per unit of t."""

    key: str
    eps: float
    seeds: int
    fd: np.ndarray                 #: finite-difference gradient image (mean over seeds)
    forward: np.ndarray            #: forward-mode gradient image (mean over seeds)
    fd_per_seed: np.ndarray        #: (n, H, W, C)
    forward_per_seed: np.ndarray   #: (n, H, W, C)
    rel_error: float               #: ‖mean(forward - fd)‖ / ‖mean(fd)‖
    noise: float                   #: rel_error expected from noise alone
    fd_step_change: float          #: ‖fd(ε) - fd(2ε)‖ / ‖fd(ε)‖ (FD's own error)
    reverse: float                 #: ⟨∂θ⟨w, I⟩, v⟩ by dr.backward (mean over seeds)
    reverse_fd: float              #: ⟨w, fd⟩
    reverse_rel_error: float       #: |reverse - reverse_fd| / |reverse_fd|
    reverse_noise: float           #: its standard error, same units
    adjoint_mismatch: float        #: |⟨bwd(w), v⟩ - ⟨w, fwd(v)⟩| / |⟨w, fwd(v)⟩| (same seed)
    tol: float
    reverse_per_seed: np.ndarray = None      #: (n,) ⟨∂θ⟨w, I⟩, v⟩ per seed
    reverse_fd_per_seed: np.ndarray = None   #: (n,) ⟨w, FD⟩ per seed
    seconds: dict = dataclasses.field(default_factory=dict)

    @classmethod
    def from_samples(cls, *, key, eps, tol, fd_per_seed, forward_per_seed,
                     reverse_per_seed, reverse_fd_per_seed, fd_step_change=float("nan"),
                     adjoint_mismatch=float("nan"), seconds=None):
        """Compute the error and noise statistics from per-seed results."""
        fd_s, fwd_s = fd_per_seed, forward_per_seed
        n = len(fd_s)
        d = fwd_s - fd_s
        fd_norm = np.linalg.norm(fd_s.mean(0)) or 1e-30
        rd = reverse_per_seed - reverse_fd_per_seed
        rfd = float(reverse_fd_per_seed.mean())
        denom = abs(rfd) or 1e-30
        return cls(
            key=key, eps=eps, seeds=n, fd=fd_s.mean(0), forward=fwd_s.mean(0),
            fd_per_seed=fd_s, forward_per_seed=fwd_s,
            rel_error=float(np.linalg.norm(d.mean(0)) / fd_norm),
            noise=float(math.sqrt(d.var(0, ddof=1).sum() / n) / fd_norm),
            fd_step_change=fd_step_change,
            reverse=float(reverse_per_seed.mean()), reverse_fd=rfd,
            reverse_rel_error=float(abs(rd.mean()) / denom),
            reverse_noise=float(rd.std(ddof=1) / math.sqrt(n) / denom),
            adjoint_mismatch=adjoint_mismatch, tol=tol,
            reverse_per_seed=reverse_per_seed, reverse_fd_per_seed=reverse_fd_per_seed,
            seconds=seconds or {})

    def with_ad_scaled(self, factor: float, forward_only=None) -> "GradcheckReport":
        """The same check with the AD gradients multiplied by ``factor``
        (0: a zero gradient, -1: a wrong sign). Shows the check can fail."""
        fwd = self.forward_per_seed * factor if forward_only is None else forward_only
        return GradcheckReport.from_samples(
            key=self.key, eps=self.eps, tol=self.tol, fd_per_seed=self.fd_per_seed,
            forward_per_seed=fwd, reverse_per_seed=self.reverse_per_seed * factor,
            reverse_fd_per_seed=self.reverse_fd_per_seed,
            fd_step_change=self.fd_step_change)

    @staticmethod
    def _ok(err, noise, tol):
        return err ** 2 <= (2 * noise) ** 2 + tol ** 2

    @property
    def forward_ok(self) -> bool:
        return self._ok(self.rel_error, self.noise, self.tol)

    @property
    def reverse_ok(self) -> bool:
        return self._ok(self.reverse_rel_error, self.reverse_noise, self.tol)

    @property
    def passed(self) -> bool:
        """Forward and reverse agree with FD within noise and ``tol``."""
        return self.forward_ok and self.reverse_ok

    def __str__(self):
        mark = lambda ok: "ok" if ok else "FAIL"  # noqa: E731
        return "\n".join([
            f"gradcheck '{self.key}' (eps={self.eps:g}, {self.seeds} seeds)",
            f"  forward : rel. error {self.rel_error:.4f}  noise {self.noise:.4f}  "
            f"[{mark(self.forward_ok)}]",
            f"  reverse : {self.reverse:+.6g} vs FD {self.reverse_fd:+.6g}  rel. error "
            f"{self.reverse_rel_error:.4f}  noise {self.reverse_noise:.4f}  "
            f"[{mark(self.reverse_ok)}]",
            f"  FD step : change eps->2eps {self.fd_step_change:.4f}   "
            f"adjoint mismatch {self.adjoint_mismatch:.2e}   tol {self.tol}",
        ])


def _direction_like(value, direction, key):
    """Turn ``direction`` (None, scalar, sequence, array) into an array of
    ``value``'s type. For vertex positions a 3-vector means a translation."""
    flat = dr.ravel(dr.detach(value))
    n = dr.width(flat)
    if direction is None:
        d = np.ones(n, np.float32)
    else:
        d = np.asarray(direction, np.float32).ravel()
        if d.size == 1:
            d = np.full(n, d[0], np.float32)
        elif d.size == 3 and n % 3 == 0 and (key.endswith("vertex_positions") or n != 3):
            d = np.tile(d, n // 3)
        if d.size != n:
            raise ValueError(f"direction has {d.size} entries, parameter '{key}' has {n}")
    if isinstance(value, mi.TensorXf):
        return mi.TensorXf(mi.Float(d), value.shape)
    return dr.unravel(type(value), mi.Float(d)) if dr.size_v(value) not in (0, 1) \
        else type(value)(mi.Float(d))


def _rgb(img) -> np.ndarray:
    a = np.array(img, dtype=np.float64)
    return a[..., :3] if a.shape[-1] >= 4 else a


def _progress_hook(progress, total):
    """``(tick, close)`` for :func:`gradcheck`'s ``progress`` argument:
    ``tick(stage)`` after each render, ``close()`` at the end."""
    if progress is None or progress is False:
        return (lambda stage: None), (lambda: None)
    if progress is True:
        from tqdm.auto import tqdm
        bar = tqdm(total=total, desc="gradcheck", unit="render", leave=False)

        def tick(stage):
            bar.set_postfix_str(stage, refresh=False)
            bar.update(1)
        return tick, bar.close
    if not callable(progress):
        raise TypeError(f"progress must be None, True or a callable, got {progress!r}")
    return progress, (lambda: None)


def gradcheck(scene, key: str, direction=None, *,
              eps: float = 1e-2,
              spp: int = 64,
              spp_fd: int | None = None,
              seeds: int = 4,
              tol: float = 0.05,
              sensor: int = 0,
              max_depth: int | None = None,
              integrator=None,
              check_step: bool = True,
              reference: GradcheckReport | None = None,
              progress=None,
              **render_kwargs) -> GradcheckReport:
    """Check pathgrad's gradient of ``scene`` with respect to ``key`` along
    ``direction`` against central finite differences.

    Parameters
    ----------
    scene : mi.Scene, path or dict
    key : str
        Parameter key as in ``mi.traverse(scene)``.
    direction : None, float, sequence, array or dict
        Perturbation direction v (default: all ones). A 3-vector given for a
        parameter of 3n values is repeated n times: for ``*.vertex_positions``
        that is a rigid translation. For a transform (``*.to_world``) a pose
        direction, e.g. ``{'translate': [1, 0, 0]}`` or ``{'rotate': [0, 5,
        0]}`` (degrees per unit step, about the transform's origin; see
        :mod:`pathgrad.poses`): the path is θ(s) = ``poses.moved(θ₀, s, v)``.
    eps : float
        Finite-difference step, in the parameter's units. For geometry choose
        one that moves silhouettes by about 0.05-0.1 pixel.
    spp, spp_fd : int
        Samples per pixel of the AD passes and of each FD render (default
        ``4 * spp``: the difference of two renders is noisier than AD).
    seeds : int
        Independent repetitions; their spread gives the noise level (>= 2).
    tol : float
        Systematic relative error allowed on top of 2x the measured noise.
    check_step : bool
        Also render the FD at step 2ε and report the change (FD's own error).
    reference : GradcheckReport, optional
        Reuse the finite differences of an earlier report (same key, direction
        and seeds), e.g. to check the same gradient with another integrator.
    progress : None, True or callable, optional
        ``None`` (default): silent. ``True``: a tqdm progress bar over the
        renders. A callable is called after each render with its stage name
        (``'fd'``, ``'fd-2eps'``, ``'forward'`` or ``'reverse'``).
    render_kwargs
        Passed to :func:`pathgrad.render` for the AD passes (``boundary``,
        ``boundary_spp``, ...).

    Returns a :class:`GradcheckReport`; ``report.passed`` is the verdict.
    """
    import time

    if seeds < 2:
        raise ValueError("gradcheck needs seeds >= 2 to measure the noise")
    scene = load_scene(scene)
    spp_fd = 4 * spp if spp_fd is None else spp_fd
    params = parameters(scene, key, enable_grad=False)
    pose = poses.is_transform(params[key])
    if pose:
        theta0 = poses.detached(params[key])
        v = poses.check_direction(direction if direction is not None else {}, key)
    else:
        theta0 = type(params[key])(dr.detach(params[key]))
        v = _direction_like(theta0, direction, key)

    def at(s):
        """θ(s) on the checked path (s: float or attached Float)."""
        return poses.moved(theta0, s, v) if pose else theta0 + s * v
    kw = dict(sensor=sensor, max_depth=max_depth, integrator=integrator)
    ad_kw = dict(kw, **render_kwargs)
    timing = {}

    def set_theta(value):
        params[key] = value
        params.update()

    n_fd = 0 if reference is not None else 2 * seeds * (2 if check_step else 1)
    tick, close_progress = _progress_hook(progress, n_fd + 2 * seeds)

    def fd_image(step, seed, stage="fd"):
        set_theta(at(step))
        hi = _rgb(render(scene, spp=spp_fd, seed=seed, **kw))
        tick(stage)
        set_theta(at(-step))
        lo = _rgb(render(scene, spp=spp_fd, seed=seed, **kw))
        tick(stage)
        return (hi - lo) / (2 * step)

    try:
        t0 = time.perf_counter()
        fd2 = None
        if reference is not None:  # reuse another report's finite differences
            if reference.key != key or reference.seeds != seeds:
                raise ValueError("reference report is for another key or seed count")
            fd_s, eps = reference.fd_per_seed, reference.eps
        else:
            fd_s = np.stack([fd_image(eps, 1000 + s) for s in range(seeds)])
            if check_step:
                fd2 = np.mean([fd_image(2 * eps, 1000 + s, "fd-2eps") for s in range(seeds)],
                              axis=0)
        timing["fd"] = time.perf_counter() - t0

        # forward mode: θ = θ₀ + t v, tangent dt = 1
        t0 = time.perf_counter()
        fwd_s = []
        for s in range(seeds):
            t = mi.Float(0.0)
            dr.enable_grad(t)
            set_theta(at(t))
            img = render(scene, params, spp=1, spp_grad=spp, seed=0, seed_grad=s, **ad_kw)
            dr.forward(t)
            fwd_s.append(_rgb(dr.grad(img)))
            del img
            tick("forward")
        fwd_s = np.stack(fwd_s)
        timing["forward"] = time.perf_counter() - t0

        # reverse mode: a random functional, tilted towards the FD image so
        # that its value stands well above the noise
        fd_mean = fd_s.mean(0)
        rng = np.random.default_rng(12345)
        scale = np.abs(fd_mean).max() or 1.0
        w = (0.5 + rng.random(fd_mean.shape)) * fd_mean / scale
        img_shape = np.array(render(scene, spp=1, seed=0, **kw)).shape
        w_full = np.zeros(img_shape, np.float32)
        w_full[..., :w.shape[-1]] = w
        W = mi.TensorXf(w_full)

        t0 = time.perf_counter()
        rev_s = []
        set_theta(theta0)
        for s in range(seeds):
            # keep our own leaf: some plugins store a processed copy, whose
            # gradient is not the parameter's (a pose: the path's parameter)
            leaf = mi.Float(0.0) if pose else type(theta0)(theta0)
            dr.enable_grad(leaf)
            set_theta(at(leaf) if pose else leaf)
            img = render(scene, params, spp=1, spp_grad=spp, seed=0, seed_grad=s, **ad_kw)
            dr.backward(dr.sum(img * W, axis=None))
            g = dr.grad(leaf)
            rev_s.append(float(g[0]) if pose else
                         float(dr.sum(dr.ravel(g) * dr.ravel(v), axis=None)[0]))
            del img, leaf
            set_theta(at(0.0))
            tick("reverse")
        rev_s = np.array(rev_s)
        timing["reverse"] = time.perf_counter() - t0
    finally:
        set_theta(at(0.0))
        close_progress()

    fwd_dot0 = float(np.sum(fwd_s[0] * w))
    adj = abs(rev_s[0] - fwd_dot0) / (abs(fwd_dot0) or 1e-30)
    if reference is not None:
        step_change = reference.fd_step_change
    else:
        step_change = (float(np.linalg.norm(fd2 - fd_mean) / (np.linalg.norm(fd_mean) or 1e-30))
                       if fd2 is not None else float("nan"))
    return GradcheckReport.from_samples(
        key=key, eps=eps, tol=tol, fd_per_seed=fd_s, forward_per_seed=fwd_s,
        reverse_per_seed=rev_s, reverse_fd_per_seed=np.einsum("shwc,hwc->s", fd_s, w),
        fd_step_change=step_change, adjoint_mismatch=adj, seconds=timing)
