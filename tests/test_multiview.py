"""pathgrad.MultiViewProblem: one gradient over many views, in one process,
frozen, and sharded over Ray actors (a local cluster on the loopback
address, started here; skipped without the ``distributed`` extra)."""
from __future__ import annotations

import functools
import importlib.util
import os
import subprocess
import sys
import time

import drjit as dr
import mitsuba as mi
import numpy as np
import pytest

import pathgrad
from pathgrad import scenes, shapes
from pathgrad.views import ViewRenderer, view_seed

ALBEDO = "shape.bsdf.reflectance.value"
KEY = "shape.vertex_positions"
#: sums of the same terms in another order, and float32 atomic adds inside a
#: render (the suite's tolerance for that rounding)
RTOL = 1e-5


def _blob(level=2):
    v, f = shapes.icosphere_arrays(level)
    return 0.7 * v, f


def _targets(views, res, albedo=(0.75, 0.45, 0.25), stretch=(1.15, 1.0, 0.9)):
    v, f = _blob()
    scene = scenes.multiview_scene(v * np.array(stretch), f, views=views, res=res, albedo=albedo)
    return [np.array(pathgrad.render(scene, spp=32, seed=100 + i, sensor=i)) for i in range(views)]


def _source(views, res):
    v, f = _blob()
    return functools.partial(scenes.multiview_scene, v, f, views=views, res=res)


def _close(a, b):
    scale = max(np.abs(a).max(), np.abs(b).max())
    np.testing.assert_allclose(a, b, rtol=RTOL, atol=RTOL * scale)


# --------------------------------------------------------------------------
# one process
# --------------------------------------------------------------------------

def test_problem_gradient_is_the_mean_over_the_views_of_render_gradients():
    """The problem's gradient equals the mean over the step's views of
    pathgrad.render gradients with the documented seeds, and back-propagates
    through to_params (x = 2 v, one SGD step of rate 1: v moves by 2 g)."""
    views, res = 4, 12
    targets = _targets(views, res)
    v0 = np.array([0.25, 0.25, 0.25], np.float32)

    def to_params(x):
        return {ALBEDO: mi.Color3f(*(2 * dr.gather(mi.Float, x["v"], i) for i in range(3)))}

    problem = pathgrad.MultiViewProblem(_source(views, res)(), targets, {"v": v0}, to_params,
                                        optimizer=mi.ad.SGD(lr=1.0), spp=4, seed=5,
                                        frozen=False, progress=False)
    loss, g = problem.gradient(0)
    # by hand
    scene = _source(views, res)()
    params = pathgrad.parameters(scene, ALBEDO)
    params[ALBEDO] = mi.Color3f(0.5)
    dr.enable_grad(params[ALBEDO])
    params.update()
    total = 0
    for i in range(views):
        img = pathgrad.render(scene, params, spp=4, sensor=i, seed=view_seed(5, 0, i))
        total += dr.mean(dr.square(img - mi.TensorXf(targets[i])), axis=None) / views
    dr.backward(total)
    g_hand = np.array(dr.grad(params[ALBEDO])).ravel()
    assert np.abs(g_hand).min() > 0
    _close(g[ALBEDO], g_hand)
    assert loss == pytest.approx(float(np.asarray(total).ravel()[0]), rel=RTOL)
    problem.step()
    v1 = np.array(problem.variables()["v"])
    _close(v0 - v1, 2 * g_hand)


def test_problem_gradient_matches_finite_differences():
    """End to end (views, weights, reduce, to_params): the albedo gradient of
    the multi-view L2 loss against central differences of the loss with
    common random numbers at high spp. The tolerance comes from the spread
    of independent gradient estimates (5 steps); the check can fail: the
    finite difference is many standard errors from zero."""
    views, res = 3, 10
    targets = _targets(views, res)
    problem = pathgrad.MultiViewProblem(_source(views, res)(), targets,
                                        {ALBEDO: mi.Color3f(0.4, 0.5, 0.6)}, spp=64,
                                        frozen=False, progress=False)
    grads = np.array([problem.gradient(s)[1][ALBEDO] for s in range(5)])
    g, se = grads.mean(0), grads.std(0, ddof=1) / np.sqrt(len(grads))
    fd_renderer = ViewRenderer(_source(views, res)(), [ALBEDO], dict(enumerate(targets)),
                               spp=1024)
    eps, fd = 0.02, []
    for c in range(3):
        e = np.zeros(3, np.float32)
        e[c] = eps
        base = np.array([0.4, 0.5, 0.6], np.float32)
        lp = fd_renderer.gradient({ALBEDO: base + e}, 7, list(range(views)), 1, 1 / views)[0]
        lm = fd_renderer.gradient({ALBEDO: base - e}, 7, list(range(views)), 1, 1 / views)[0]
        fd.append((lp - lm) / (2 * eps))
    fd = np.array(fd)
    print("gradient", g, "+-", se, "finite differences", fd)
    assert np.all(np.abs(fd) > 6 * se)        # a zero or flipped gradient fails
    assert np.all(np.abs(g - fd) < 4 * se + 0.03 * np.abs(fd))


def test_batches_and_seeds_are_reproducible():
    views, res = 6, 8
    targets = _targets(views, res)
    runs = []
    for _ in range(2):
        p = pathgrad.MultiViewProblem(_source(views, res)(), targets,
                                      {ALBEDO: mi.Color3f(0.5)}, spp=2, batch=3, seed=11,
                                      lr=0.05, progress=False)
        p.run(3)
        runs.append((p.loss_history, [p.batch_views(s) for s in range(3)],
                     p.parameter_values()[ALBEDO]))
    assert runs[0][0] == runs[1][0] and runs[0][1] == runs[1][1]
    np.testing.assert_array_equal(runs[0][2], runs[1][2])
    assert all(len(b) == 3 for b in runs[0][1]) and len({tuple(b) for b in runs[0][1]}) > 1


def test_bad_inputs_are_named():
    views, res = 2, 8
    targets = _targets(views, res)
    src = _source(views, res)
    with pytest.raises(ValueError, match="view 1 has shape"):
        pathgrad.MultiViewProblem(src(), [targets[0], targets[1][:4]], {ALBEDO: mi.Color3f(0.5)},
                                  progress=False)
    with pytest.raises(ValueError, match="2 target images for 3 views"):
        pathgrad.MultiViewProblem(src(), targets, {ALBEDO: mi.Color3f(0.5)}, views=[0, 1, 2])
    with pytest.raises(ValueError, match="batch must be between 1 and"):
        pathgrad.MultiViewProblem(src(), targets, {ALBEDO: mi.Color3f(0.5)}, batch=5)
    with pytest.raises(ValueError, match="frozen steps cannot optimise .*vertex_positions"):
        v, _ = _blob()
        pathgrad.MultiViewProblem(src(), targets, {KEY: mi.Float(v.ravel().astype(np.float32))},
                                  frozen=True)
    with pytest.raises(ValueError, match="frozen must be True, False or 'auto'"):
        pathgrad.MultiViewProblem(src(), targets, {ALBEDO: mi.Color3f(0.5)}, frozen="yes")
    if importlib.util.find_spec("ray") is not None:
        with pytest.raises(TypeError, match="loaded mi.Scene"):
            pathgrad.MultiViewProblem(src(), targets, {ALBEDO: mi.Color3f(0.5)}, workers=2)


def test_without_ray_everything_else_works(monkeypatch):
    """Ray is an extra: importing pathgrad does not import it, and asking for
    workers without it says how to install it."""
    code = "import sys, pathgrad; assert 'ray' not in sys.modules, 'pathgrad imported ray'"
    subprocess.run([sys.executable, "-c", code], check=True)
    monkeypatch.setitem(sys.modules, "ray", None)     # import ray -> ImportError
    views, res = 2, 8
    with pytest.raises(ImportError, match=r"pathgrad\[distributed\]"):
        pathgrad.MultiViewProblem(_source(views, res), _targets(views, res),
                                  {ALBEDO: mi.Color3f(0.5)}, workers=2)


# --------------------------------------------------------------------------
# frozen steps
# --------------------------------------------------------------------------

def _lit_scene():
    T = mi.ScalarTransform4f
    return scenes.object_scene(
        {"shape": shapes.icosphere(2, 0.6, name="shape", bsdf=scenes.diffuse(0.5, 0.4, 0.3)),
         "floor": shapes.grid(2, 4, -0.6, name="floor")},
        res=12, env=0.2,
        lights={"lamp": {"type": "point", "position": [1.0, 2.0, 1.5],
                         "intensity": {"type": "rgb", "value": 8.0}},
                "panel": {"type": "rectangle",
                          "to_world": T().translate([-1.5, 1.5, 0]).rotate([1, 0, 0], 90).scale(0.4),
                          "emitter": {"type": "area", "radiance": {"type": "rgb", "value": 3.0}}}})


def test_frozen_steps_equal_unfrozen_ones_also_after_lights_change():
    """Frozen steps replay the recorded kernels (far fewer recordings than
    steps) and give the unfrozen gradients; a point light moved between steps
    is a recorded input (replayed), an area light moved (a mesh: new
    acceleration structure) or a changed intensity re-records."""
    target = {0: np.array(pathgrad.render(_lit_scene(), spp=16, seed=3))}
    plain = ViewRenderer(_lit_scene(), [ALBEDO], target, spp=4)
    frozen = ViewRenderer(_lit_scene(), [ALBEDO], target, spp=4, frozen=True)
    assert frozen.frozen and not plain.frozen
    recordings = []
    for step in range(8):
        for r in (plain, frozen):
            p = mi.traverse(r.scene)
            if step == 3:
                p["lamp.position"] = mi.Point3f(-1.0, 2.5, 1.0)
            if step == 5:
                p["panel.to_world"] = mi.Transform4f().translate([0, 0.3, 0]) @ p["panel.to_world"]
            if step == 6:
                p["lamp.intensity.value"] = mi.Color3f(3.0)
            p.update()
        values = {ALBEDO: np.array([0.8, 0.6, 0.4], np.float32) * (1 - 0.05 * step)}
        la, ga = plain.gradient(values, step, [0], seed=1)
        lb, gb = frozen.gradient(values, step, [0], seed=1)
        assert np.abs(ga[ALBEDO]).max() > 0
        _close(gb[ALBEDO], ga[ALBEDO])
        assert lb == pytest.approx(la, rel=RTOL)
        recordings.append(frozen.recordings)
    print("recordings after each step", recordings)
    assert recordings[0] == 0                      # the first step runs unfrozen (warm-up)
    assert recordings[3] == recordings[2]          # point light moved: replayed
    assert recordings[5] > recordings[4]           # area light moved: re-recorded
    assert recordings[6] > recordings[5]           # intensity changed: re-recorded
    assert recordings[7] == recordings[6]


# --------------------------------------------------------------------------
# Ray
# --------------------------------------------------------------------------

@pytest.fixture(scope="module")
def ray_cluster():
    ray = pytest.importorskip("ray")
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    t0 = time.perf_counter()
    ray.init(num_cpus=2, _node_ip_address="127.0.0.1", include_dashboard=False,
             log_to_driver=False)
    print(f"ray.init: {time.perf_counter() - t0:.1f} s")
    yield ray
    ray.shutdown()


def test_sharded_gradient_equals_one_process_also_when_a_worker_dies(ray_cluster):
    """Two actors own half the views each; their summed gradient equals the
    one-process gradient for the same seeds. Then one actor is killed while
    it renders: Ray restarts it (new process id), its views are rendered
    again, and the step's gradient is the same."""
    from pathgrad.distributed import RayViews
    views, res = 4, 12
    targets = dict(enumerate(_targets(views, res)))
    v, _ = _blob()
    values = {KEY: (1.05 * v).astype(np.float32).ravel()}
    local = ViewRenderer(_source(views, res)(), [KEY], targets, spp=4)
    l0, g0 = local.gradient(values, 3, list(range(views)), seed=7, weight=1 / views)
    assert np.abs(g0[KEY]).max() > 0
    sharded = RayViews(_source(views, res), [KEY], targets, workers=2, spp=4)
    try:
        assert sorted(set(sharded.owner.values())) == [0, 1]
        l1, g1 = sharded.gradient(values, 3, list(range(views)), seed=7, weight=1 / views)
        _close(g1[KEY], g0[KEY])
        assert l1 == pytest.approx(l0, rel=RTOL)
        assert sharded.broadcast_bytes == values[KEY].nbytes
        assert sharded.reduce_bytes == 2 * values[KEY].nbytes
        # kill worker 0 in the middle of a step
        pids = sharded.pids()
        ref = ray_cluster.put(values)
        tasks = [a.gradient.remote(ref, 4, [i for i in range(views) if sharded.owner[i] == w],
                                   7, 1 / views) for w, a in enumerate(sharded.actors)]
        time.sleep(0.05)
        ray_cluster.kill(sharded.actors[0], no_restart=False)
        parts = ray_cluster.get(tasks)
        g2 = sum(p[1][KEY] for p in parts)
        new_pids = sharded.pids()
        assert new_pids[0] != pids[0] and new_pids[1] == pids[1]
        l3, g3 = local.gradient(values, 4, list(range(views)), seed=7, weight=1 / views)
        _close(g2, g3[KEY])
    finally:
        sharded.close()


def test_problem_on_ray_steps_like_one_process_frozen(ray_cluster):
    """Whole steps (albedo, frozen in the actors) on two workers follow the
    same trajectory as in one process."""
    views, res = 4, 10
    targets = _targets(views, res)
    out = []
    for workers in (0, 2):
        with pathgrad.MultiViewProblem(_source(views, res), targets, {ALBEDO: mi.Color3f(0.5)},
                                       spp=4, lr=0.05, seed=2, workers=workers,
                                       progress=False) as p:
            p.run(4)
            if workers:
                assert ray_cluster.get([a.frozen.remote() for a in p.renderer.actors]) == [True] * 2
            else:
                assert p.renderer.frozen and p.renderer.recordings > 0
            out.append((p.loss_history, p.parameter_values()[ALBEDO]))
    np.testing.assert_allclose(out[0][0], out[1][0], rtol=1e-4)
    _close(out[0][1], out[1][1])


def test_a_frozen_step_that_disagrees_with_the_unfrozen_one_switches_freezing_off(monkeypatch):
    """The safety net: every recording is checked against an unfrozen step
    (when made and at its first replay); a disagreement warns, returns the
    unfrozen result and stops freezing. Tensors (textures) are never frozen
    by 'auto' and refused by frozen=True."""
    import pathgrad.views as views_mod
    target = {0: np.array(pathgrad.render(_lit_scene(), spp=8, seed=3))}
    r = ViewRenderer(_lit_scene(), [ALBEDO], target, spp=2, frozen="auto")
    values = {ALBEDO: np.array([0.5, 0.5, 0.5], np.float32)}
    r.gradient(values, 0, [0])                       # warm-up, unfrozen
    calls = []
    real = views_mod._disagree

    def spy(out, ref, rtol=1e-4):
        calls.append(real(out, ref, rtol))
        return "gradient of 'test'"                  # pretend the replay was wrong
    monkeypatch.setattr(views_mod, "_disagree", spy)
    with pytest.warns(RuntimeWarning, match="frozen steps are switched off"):
        loss, g = r.gradient(values, 1, [0])         # recording, checked
    assert calls == [""] and not r.frozen            # (the real check agreed)
    _, g_plain = ViewRenderer(_lit_scene(), [ALBEDO], target, spp=2).gradient(values, 1, [0])
    _close(g[ALBEDO], g_plain[ALBEDO])
    tex = scenes.object_scene({"shape": shapes.grid(
        2, 2, name="shape", bsdf={"type": "diffuse", "reflectance": {
            "type": "bitmap", "bitmap": mi.Bitmap(np.full((4, 4, 3), 0.5, np.float32)),
            "raw": True}})}, res=8)
    key = "shape.bsdf.reflectance.data"
    img = {0: np.zeros((8, 8, 3), np.float32)}
    assert not ViewRenderer(tex, [key], img, frozen="auto").frozen
    with pytest.raises(ValueError, match="texture"):
        ViewRenderer(tex, [key], img, frozen=True)
