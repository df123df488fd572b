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
