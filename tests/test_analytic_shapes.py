"""Gradients of Mitsuba's analytic shapes moved by their ``to_world``
(translation, rotation, scale) against finite differences, seen directly
and casting a soft shadow (``camera_scene(analytic=...)``): the outline of a
disk, the contour of a sphere (from the camera and from the shaded floor),
and Mitsuba's ``rectangle`` (a mesh whose vertices follow ``to_world``).

Each case passes with every term and fails without the boundary term (same
finite differences); the shadow case also fails without the shadow terms.
As every gradient test, a zero or sign-flipped gradient would fail.
"""
import pytest

from pathgrad.scenes import camera_scene
from conftest import check_term

#: kind, pose direction, FD step, spp, FD spp. Rotations (degrees, about the
#: shape's centre) move the outline little: they need more samples for the
#: same relative noise (at 1024 FD spp the rectangle's FD changed by 13%
#: between steps 0.3 and 0.6 degrees). (A uniform sphere's rotation changes
#: nothing.)
CASES = {
    "sphere translation": ("sphere", {"translate": [1, 0, 0.5]}, 0.01, 64, 1024),
    "sphere scale": ("sphere", {"scale": 1.0}, 0.02, 64, 1024),
    "disk translation": ("disk", {"translate": [1, 0, 0]}, 0.01, 64, 1024),
    "disk rotation": ("disk", {"rotate": [1, 0, 0]}, 0.3, 128, 4096),
    "disk scale": ("disk", {"scale": 1.0}, 0.02, 64, 1024),
    "rectangle translation": ("rectangle", {"translate": [0, 1, 1]}, 0.01, 64, 1024),
    "rectangle rotation": ("rectangle", {"rotate": [1, 0, 0]}, 0.3, 128, 4096),
}
#: (the rectangle is a mesh: its estimators are tested at length elsewhere)
#: (the disk's translation is checked in the default suite by the shadow test)
SLOW = {"sphere scale", "disk scale", "disk rotation", "rectangle translation",
        "rectangle rotation", "disk translation"}


@pytest.mark.parametrize("case", [pytest.param(c, marks=pytest.mark.slow) if c in SLOW else c
                                  for c in CASES])
def test_analytic_shape_transform(case):
    kind, direction, eps, spp, spp_fd = CASES[case]
    check_term(camera_scene("perspective", res=20, analytic=kind), "analytic.to_world",
               direction, eps, {"boundary": False}, spp=spp, spp_fd=spp_fd)


def test_disk_shadow_needs_the_shadow_term():
    """The disk's soft shadow on the floor moves with it: the analytic
    shadow estimator's share (about a quarter of the gradient here)."""
    check_term(camera_scene("perspective", res=20, analytic="disk"), "analytic.to_world",
               {"translate": [1, 0, 0]}, 0.01, {"shadow": False}, spp=64, spp_fd=1024)


@pytest.mark.slow
def test_camera_moving_past_a_sphere():
    """The camera moves: the sphere's contour slides on it and moves in the
    image, its shadow's edge moves with the shading points."""
    check_term(camera_scene("perspective", res=20, analytic="sphere"), "sensor.to_world",
               {"translate": [1, 0, 0]}, 0.01, {"boundary": False}, spp=128, spp_fd=1024)
