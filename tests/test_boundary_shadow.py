"""Shadow boundary terms against finite differences: soft shadows of area
lights and environments (edge sampling at the shading point), hard shadows
of point lights (image-space shadow curves).

Each case passes with the shadow term, fails without it (same finite
differences), and, as every gradient test, would fail for a zero or a
sign-flipped gradient. The camera sees only the floor in the first cases, so
primary visibility plays no part there.
"""

from pathgrad.scenes import shadow_scene
from conftest import check_term



def check(scene, key, direction, eps, *, spp_fd=1024, **kw):
    # the estimators at the budget these cases were sized for, one boundary
    # sample per camera sample (the default, noise-balanced budget spends
    # less on them; it has its own tests in test_budgets.py)
    kw.setdefault("boundary_spp", kw.get("spp", 32))
    return check_term(scene, key, direction, eps, {"shadow": False}, spp_fd=spp_fd, **kw)


def test_occluder_translated_area_light():
    check(shadow_scene("area"), "occ.vertex_positions", [1, 0, 0.5], eps=0.002)


def test_receiver_translated_under_fixed_occluder():
    """The floor moves up: the shadow shrinks and shifts on it; the occluder
    and light stay (their edges move relative to the shading points)."""
    check(shadow_scene("area"), "floor.vertex_positions", [0, 1, 0], eps=0.002, spp_fd=8192)


def test_area_light_translated():
    """The light's own outline moves (its open edges), the occluder's
    shadow moves with it."""
    check(shadow_scene("area"), "light.vertex_positions", [1, 0, 0.3], eps=0.002)


def test_perpendicular_rectangles_self_shadowing():
    """A wall standing on the floor, lit from above and seen with the floor:
    moving the wall moves its shadow (shadow term) and its outline (primary
    term) at the right angle where they meet."""
    check(shadow_scene("area", wall=True), "wall.vertex_positions", [1, 0, 0.2], eps=0.002)


def test_point_light_hard_shadow_occluder_translated():
    check(shadow_scene("point"), "occ.vertex_positions", [1, 0, 0.5], eps=0.001, spp_fd=2048)


def test_occluder_under_environment_map():
    check(shadow_scene("env"), "occ.vertex_positions", [1, 0, 0.5], eps=0.001, spp=64,
          spp_fd=4096)


def test_no_shadow_term_at_max_depth_1():
    """At max_depth 1 paths end at the first vertex: no direct light, so no
    shadow edge. The shadow estimators used to add a term there anyway (7% of
    the silhouette term's norm on an emitting ball over a lit floor)."""
    import drjit as dr
    import mitsuba as mi
    import numpy as np
    import pathgrad

    for light in ("area", "point"):
        scene = shadow_scene(light, max_depth=1)
        params = pathgrad.parameters(scene, "occ.vertex_positions")
        t = {"occ.vertex_positions": dr.full(mi.Float, 1.0, dr.width(params["occ.vertex_positions"]))}
        on = np.array(pathgrad.gradient_images(scene, params, t, spp=2)["boundary"])
        off = np.array(pathgrad.gradient_images(scene, params, t, spp=2, shadow=False)["boundary"])
        np.testing.assert_array_equal(on, off, err_msg=light)
        # the term is there at max_depth 2 (the test can fail)
        scene2 = shadow_scene(light, max_depth=2)
        p2 = pathgrad.parameters(scene2, "occ.vertex_positions")
        b2 = np.array(pathgrad.gradient_images(scene2, p2, t, spp=2)["boundary"])
        assert np.abs(b2).max() > 0, light


def test_directional_light_hard_shadow_occluder_translated():
    """A directional light's shadow: parallel rays, the same image-space
    construction as a point light's (the light's "position" beyond the
    scene along its direction, per edge point)."""
    check(shadow_scene("directional"), "occ.vertex_positions", [1, 0, 0.5], eps=0.001,
          spp_fd=2048)
