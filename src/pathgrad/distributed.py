"""Multi-view steps on many processes or machines with Ray (the
``pathgrad[distributed]`` extra: ``pip install 'pathgrad[distributed]'``).

:class:`RayViews` starts one Ray actor per worker. Each actor loads the
scene once, from the same source (an XML path, a scene dict, or a function
that builds the scene), holds the target images of its shard of the views
(view ``j`` of the sorted view list goes to worker ``j mod workers``) and
keeps its kernels compiled between steps. A step puts the parameter arrays
in Ray's object store once (the broadcast), each actor renders the views of
the step that it owns and returns its loss and gradient (flat numpy arrays),
and the driver adds them in worker order (the reduce).

The seed of a view depends only on the run's seed, the step and the view
(:func:`pathgrad.views.view_seed`), so the gradient equals the one-process
gradient for the same seeds up to the rounding of the sums (float32 atomic
adds inside each render; the order of the views' sums). Actors are created
with ``max_restarts`` and ``max_task_retries``: when a worker process dies
mid-step, Ray restarts it (it reloads the scene) and re-runs its part of
the step, which gives the same result since a step's work is a pure
function of its inputs.

The same script runs on a laptop (``ray.init()``, or nothing: a local
cluster is started) and on a cluster (``ray.init(address=...)`` before, or
``address=`` here).
"""

from __future__ import annotations

import os
from typing import Mapping, Sequence

import numpy as np

from .views import ViewRenderer

__all__ = ["RayViews", "require_ray"]

INSTALL = ("pathgrad's distributed steps need Ray: pip install 'pathgrad[distributed]' "
           "(or: pip install ray), or pass workers=0 to run every view in this process")


def require_ray():
    """The ``ray`` module, or ImportError saying how to install it."""
    try:
        import ray
    except ImportError as e:
        raise ImportError(INSTALL) from e
    return ray


class ShardWorker:
    """What one Ray actor runs: a :class:`~pathgrad.views.ViewRenderer` for
    its shard of the views (built in the actor's process)."""

    def __init__(self, variant: str, scene_source, keys, targets, loss, spp, render_kwargs,
                 threads: int, frozen=False):
        import drjit as dr
        from ._variant import set_variant
        set_variant(variant)
        if threads > 0:   # one Dr.Jit thread pool per actor, sized to its CPUs
            dr.set_thread_count(threads)
        scene = scene_source() if callable(scene_source) else scene_source
        self.renderer = ViewRenderer(scene, keys, targets, loss, spp, render_kwargs, frozen)

    def gradient(self, values, step, views, seed, weight):
        return self.renderer.gradient(values, step, views, seed, weight)

    def pid(self) -> int:
        return os.getpid()

    def frozen(self) -> bool:
        return self.renderer.frozen


class RayViews:
    """Views of one scene rendered by ``workers`` Ray actors.

    Parameters
    ----------
    scene_source : str, dict or callable
        What each actor loads: an XML path, a Mitsuba scene dict (it is
        pickled: plugins given as objects, such as ``mi.Bitmap``, must be
        replaced by file names), or a function returning a scene (or one of
        those). A loaded ``mi.Scene`` cannot be sent.
    keys, targets, loss, spp, render_kwargs, frozen
        As for :class:`~pathgrad.views.ViewRenderer` (``targets``: every
        view's, numpy arrays; each actor gets its shard's).
    workers : int
        Number of actors.
    address : str, optional
        Ray cluster address for ``ray.init`` when Ray is not initialised yet
        (default: a local cluster).
    cpus_per_worker : float
        CPUs Ray reserves per actor (also the size of its Dr.Jit thread
        pool, rounded).
    max_restarts : int
        How often a dead actor is restarted (and its task retried).
    """

    def __init__(self, scene_source, keys: Sequence[str], targets: Mapping[int, np.ndarray], *,
                 workers: int, loss="l2", spp: int = 4, render_kwargs: Mapping | None = None,
                 address: str | None = None, cpus_per_worker: float = 1.0,
                 max_restarts: int = 3, frozen: bool | str = False):
        import mitsuba as mi
        ray = require_ray()
        if isinstance(scene_source, mi.Scene):
            raise TypeError("workers > 0 needs the scene's source, not a loaded mi.Scene (it "
                            "cannot be sent to other processes): pass the XML path, the scene "
                            "dict, or a function that builds the scene")
        if int(workers) < 1:
            raise ValueError(f"workers must be >= 1, got {workers}")
        if not ray.is_initialized():
            ray.init(address=address, include_dashboard=False, log_to_driver=True)
        self.ray = ray
        self.views = sorted(int(i) for i in targets)
        self.workers = int(workers)
        #: the worker that owns each view
        self.owner = {v: j % self.workers for j, v in enumerate(self.views)}
        actor = ray.remote(num_cpus=cpus_per_worker, max_restarts=max_restarts,
                           max_task_retries=max_restarts)(ShardWorker)
        threads = max(1, int(round(cpus_per_worker)))
        self.max_restarts = int(max_restarts)
        self.actors = []
        # the constructor arguments stay referenced here: a restarted actor
        # reads them from the object store again
        self._init_refs = []
        source_ref = ray.put(scene_source)
        for w in range(self.workers):
            shard = ray.put({v: np.asarray(targets[v], np.float32) for v in self.views
                             if self.owner[v] == w})
            self._init_refs.append(shard)
            self.actors.append(actor.remote(mi.variant(), source_ref, list(keys), shard, loss,
                                            spp, dict(render_kwargs or {}), threads, frozen))
        self._init_refs.append(source_ref)
        #: bytes put in the object store (broadcast) and returned (reduce) by the last step
        self.broadcast_bytes = 0
        self.reduce_bytes = 0
        self._get([a.pid.remote() for a in self.actors])   # scenes loaded (or their errors)

    def _get(self, refs):
        try:
            return self.ray.get(refs)
        except self.ray.exceptions.RayTaskError as e:
            raise e.as_instanceof_cause() from None
        except self.ray.exceptions.RayActorError as e:
            raise RuntimeError(
                f"a pathgrad worker died and could not be restarted (it was restarted up to "
                f"max_restarts={self.max_restarts} times, or it failed while loading the "
                "scene); see the worker's log above") from e

    def gradient(self, values: Mapping[str, np.ndarray], step: int, views: Sequence[int],
                 seed: int = 0, weight: float = 1.0) -> tuple[float, dict]:
        """As :meth:`pathgrad.views.ViewRenderer.gradient`, over the actors."""
        unknown = [int(v) for v in views if int(v) not in self.owner]
        if unknown:
            raise KeyError(f"views {unknown} have no target image (the workers hold views "
                           f"{self.views})")
        ref = self.ray.put(dict(values))
        self.broadcast_bytes = sum(np.asarray(v).nbytes for v in values.values())
        tasks = []
        for w, a in enumerate(self.actors):
            mine = [int(v) for v in views if self.owner.get(int(v)) == w]
            if mine:
                tasks.append(a.gradient.remote(ref, step, mine, seed, weight))
        results = self._get(tasks)
        loss = 0.0
        grads = {k: np.zeros_like(np.asarray(v), np.float32) for k, v in values.items()}
        for part_loss, part in results:   # (worker order: the same sum every run)
            loss += part_loss
            for k, g in part.items():
                grads[k] += g
        self.reduce_bytes = sum(g.nbytes for _, part in results for g in part.values())
        return loss, grads

    def pids(self) -> list[int]:
        """The process ids of the actors (they change when one is restarted)."""
        return self._get([a.pid.remote() for a in self.actors])

    def close(self) -> None:
        """Stop the actors (Ray itself keeps running)."""
        for a in self.actors:
            self.ray.kill(a, no_restart=True)
        self.actors = []
