"""The boundary-estimator interface: the integrator loops over its list of
estimators, each with its own sample budget, and the shared per-render
pieces (what moves)."""
import drjit as dr
import mitsuba as mi
import numpy as np
import pytest

import pathgrad
from pathgrad import integrator as integ_mod
from pathgrad.boundary.estimator import BoundaryEstimator, Samples
from pathgrad.boundary.motion import Motion
from pathgrad.scenes import diffuse, object_scene
from pathgrad.shapes import icosphere


def ball_scene():
    return object_scene({"ball": icosphere(2, 0.8, name="ball", smooth=False, bsdf=diffuse(0.3))},
                        res=16)


def boundary_image(scene, **props):
    params = pathgrad.parameters(scene, "ball.vertex_positions")
    n = dr.width(params["ball.vertex_positions"]) // 3
    t = mi.Float(np.tile([1.0, 0.3, 0], n).astype(np.float32))
    terms = pathgrad.gradient_images(scene, params, {"ball.vertex_positions": t}, spp=4,
                                     shadow=False, **props)
    dr.disable_grad(params["ball.vertex_positions"])
    return np.array(terms["boundary"])


def test_estimator_names_are_unique():
    """Each name keys a budget property and a seed stream: no two may share one."""
    names = [e.name for e in integ_mod.BOUNDARY_ESTIMATORS]
    assert len(set(names)) == len(names)


def test_own_budget_overrides_boundary_spp():
    scene = ball_scene()
    by_own = boundary_image(scene, primary_spp=3.0, boundary_spp=0.5)
    by_shared = boundary_image(scene, boundary_spp=3.0)
    fewer = boundary_image(scene, boundary_spp=0.5)
    np.testing.assert_allclose(by_own, by_shared, rtol=1e-5, atol=1e-5)
    assert np.abs(by_own - fewer).max() > 1e-2 * np.abs(by_own).max()   # the budget is used


def test_budgets_through_the_plugin_and_bad_values():
    integ = mi.load_dict({"type": "pathgrad", "shadow_spp": 2, "primary_spp": 0.25})
    assert integ.budgets["shadow_spp"] == 2 and integ.budgets["primary_spp"] == 0.25
    assert "primary_spp=0.25" in str(integ)
    with pytest.raises((RuntimeError, ValueError), match="shadow_delta_spp must be >= 0"):
        mi.load_dict({"type": "pathgrad", "shadow_delta_spp": -1})
    with pytest.raises(ValueError, match="primary_spp must be >= 0"):
        pathgrad.make_integrator(primary_spp=-2)
    with pytest.raises(TypeError, match="primary_spp"):
        pathgrad.render(ball_scene(), primry_spp=1)


class _Probe(BoundaryEstimator):
    """A test estimator whose term is Σ_edges ∂x(p0) in every pixel."""

    name = "probe"

    def prepare(self, ctx):
        return [ctx.edges] if ctx.edges.count else []

    def sample(self, ctx, edges, n):
        return Samples(edges=edges)

    def radiance_difference(self, ctx, smp):
        pass

    def splat(self, ctx, smp):
        x = smp.edges.p0.x
        total = dr.sum(x - dr.detach(x))
        shape = (*tuple(ctx.film.crop_size())[::-1], 3)
        flat = dr.gather(mi.Float, total, dr.zeros(mi.UInt32, int(np.prod(shape))))
        return mi.TensorXf(flat, shape)


def test_integrator_sums_every_estimator_in_its_list(monkeypatch):
    scene = ball_scene()
    before = boundary_image(scene)
    monkeypatch.setattr(integ_mod, "BOUNDARY_ESTIMATORS",
                        integ_mod.BOUNDARY_ESTIMATORS + (_Probe(),))
    after = boundary_image(scene)
    edges = pathgrad.boundary.edges.edge_table(scene.shapes()[0]).count
    np.testing.assert_allclose(after - before, edges, rtol=1e-4)


def test_motion_says_what_moves():
    scene = object_scene({"a": icosphere(1, 0.3, name="a", center=(-0.5, 0, 0)),
                          "b": icosphere(1, 0.3, name="b", center=(0.5, 0, 0))},
                         lights={"lamp": {"type": "point", "position": [0, 2, 2]}})
    assert not Motion(scene).any
    params = pathgrad.parameters(scene, "b.vertex_positions")
    motion = Motion(scene)
    by_id = {s.id(): s for s in scene.shapes()}
    a, b = by_id["a"], by_id["b"]
    assert motion.any and motion.mesh_moves(b) and not motion.mesh_moves(a)
    assert len(motion.lights) == 1 and not motion.moving_lights
    ptrs = mi.ShapePtr([a, b, a])
    assert [bool(v) for v in np.array(motion.shape_moves(ptrs))] == [False, True, False]
    dr.disable_grad(params["b.vertex_positions"])


def _live_ad_variables() -> int:
    import gc
    gc.collect()
    return sum(1 for line in dr.graphviz_ad(as_string=True).splitlines() if 'label="{' in line)


def test_caches_do_not_keep_scenes_alive():
    """The per-mesh caches (edge tables, planar-light rectangles) and the
    camera cache must not hold a rendered scene's AD graph: an old,
    gradient-carrying variable kept alive that way broke forward mode inside
    the custom op of a later render ("lies outside of the current
    dr.isolate_grad() scope"), and it leaks memory across scenes."""
    from conftest import scene_path
    before = _live_ad_variables()
    scene = pathgrad.load_scene(scene_path("cbox.xml"), res=8)   # a mesh area light
    params = pathgrad.parameters(scene)
    img = pathgrad.render(scene, params, spp=1)
    dr.backward(dr.mean(img, axis=None))
    assert _live_ad_variables() > before        # the check can see AD variables
    del scene, params, img
    assert _live_ad_variables() <= before
