"""Indirect-visibility boundary term (silhouettes seen from path vertices,
:mod:`pathgrad.boundary.indirect`) against finite differences.

In each scene the moving occluder is out of the camera's view and, where a
light is involved, out of the first vertex's view of it: the only effect of
its motion on the image goes through a vertex after the first bounce, or
through light reflected (not emitted) towards the first vertex. Each case
passes with the term, fails without it (same finite differences; the
interior term alone gives about zero there), and, as every gradient test,
would fail for a zero or sign-flipped gradient. Resolutions are small and
sample counts high: the noise, not the pixel count, sets the cost of a
test whose signal covers most of the image.
"""

from pathgrad.scenes import indirect_scene
from conftest import check_term


def check(kind, eps, *, res, spp, spp_fd, **kw):
    kw.setdefault("boundary_spp", spp)   # one boundary sample per camera sample
    return check_term(indirect_scene(kind, res=res), "occ.vertex_positions", [1, 0, 0.5], eps,
                      {"indirect": False}, spp=spp, spp_fd=spp_fd, **kw)


def test_shadow_of_light_bounced_off_the_ceiling():
    """The light shines up at the ceiling; the floor sees only its back: the
    occluder's soft shadow on the floor is cast by reflected light."""
    check("bounce", 0.01, res=12, spp=512, spp_fd=32768)


def test_occluder_seen_in_a_rough_conductor_floor():
    """The camera sees the occluder only in the floor's glossy reflection.
    Its lit flat faces differ in brightness: the creases between them are
    discontinuities too (without them this case was 67% off in forward
    mode, noise 0.16)."""
    check("glossy", 0.004, res=12, spp=512, spp_fd=32768)


def test_occluder_in_a_closed_room_at_depth_4():
    """A closed diffuse room lit only by light reflected off its ceiling
    (max_depth 4): the occluder over the camera shades the floor in view."""
    check("box", 0.003, res=12, spp=2048, spp_fd=65536)


def test_smooth_uv_sphere_deformed_under_bounced_light():
    """Another mesh kind and motion: a smooth-shaded UV sphere (12 x 24,
    about 790 candidate edges: the resampled edge choice) that *grows* (each vertex
    moves away from the centre, a deformation) in the bounced-light scene."""
    import mitsuba as mi
    import numpy as np
    scene = indirect_scene("bounce", res=12, smooth_occluder=True)
    v = np.array(mi.traverse(scene)["occ.vertex_positions"]).reshape(-1, 3)
    radial = (v - np.array([1.1, 1.2, 0.0])).ravel()
    check_term(scene, "occ.vertex_positions", radial, 0.01, {"indirect": False}, spp=512,
               spp_fd=32768, boundary_spp=512)
