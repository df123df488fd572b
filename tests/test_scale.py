"""Scale invariance: one scene built at 1e-6 ... 1e6 scene units.

Scaling every position by ``s`` leaves the image unchanged and divides
position gradients by ``s``. With the same seeds the boundary estimators
make the same decisions at every scale, so ``s * gradient`` must equal the
gradient at scale 1 up to rounding. Measured: 6e-7 of its norm for camera
rays alone; 1.3e-2 with shadows, where a few rays grazing an edge land on
the other side of it when the rounding changes (9 of 700 point-light
shadow samples; 4e-6 at s = 1024, which rounds as s = 1 does). The
tolerance is a fraction of the noise between two seeds at scale 1,
measured here: a term that is lost or that draws other samples at another
scale differs by the order of that noise (before this test: 0.25-2.6 of
it, or non-finite).

Mitsuba's ray offset sets a floor (see :func:`pathgrad.scenes.scaled_scene`):
below a scale of about 0.1 its shadow and bounce rays start visibly off the
surface, so the image itself changes. Scenes with such rays are therefore
compared at large scales only; at small scales they must stay finite, and a
scene seen by camera rays alone (``max_depth=1``, an emitting ball) is
compared at every scale and checked against finite differences at 1e-6.
"""
import functools

import drjit as dr
import mitsuba as mi
import numpy as np
import pytest

import pathgrad
from conftest import check_term
from pathgrad.scenes import scaled_scene

KEY = "ball.vertex_positions"
slow = pytest.mark.slow
#: s * gradient must differ from the scale-1 gradient by less than this
#: fraction of the seed-to-seed noise there (measured: 0.09 lit, 2e-5
#: emitting)
NOISE_FRACTION = 0.2
#: two kinds of scene: lit (area and point light, shadows, one bounce) and
#: an emitting ball seen directly (no ray is spawned off a surface)
LIT = dict(max_depth=2)
EMITTING = dict(max_depth=1, emitting=True)


def _scene(kind, scale):
    return scaled_scene(scale, **(LIT if kind == "lit" else EMITTING))


@functools.lru_cache(maxsize=None)
def _reverse(kind, scale, seed):
    """Image and s x the vertex gradient of the image's sum (both numpy)."""
    scene = _scene(kind, scale)
    params = pathgrad.parameters(scene, KEY)
    img = pathgrad.render(scene, params, spp=4, seed=seed)
    dr.backward(dr.sum(img, axis=None))
    return np.array(img), np.array(dr.grad(params[KEY])) * scale


def _rel(a, b):
    return float(np.linalg.norm(a - b) / np.linalg.norm(b))


def _check_matches_unit_scale(kind, scale):
    img, g = _reverse(kind, scale, 1)
    img1, g1 = _reverse(kind, 1.0, 1)
    _, g1b = _reverse(kind, 1.0, 2)
    noise = _rel(g1b, g1)
    assert noise > 0.02, f"seed noise {noise:.3g}: too low to set a tolerance"
    assert np.all(np.isfinite(g)), f"{np.sum(~np.isfinite(g))} non-finite gradient entries"
    assert _rel(img, img1) < 1e-5
    err = _rel(g, g1)
    print(f"{kind} s={scale:g}: |s g - g(1)| / |g(1)| = {err:.2e}, seed noise {noise:.2e}")
    assert err < NOISE_FRACTION * noise, \
        f"s * gradient differs from scale 1 by {err:.3g} (seed noise {noise:.3g})"


@pytest.mark.parametrize("scale", [1e-6, pytest.param(1e-3, marks=slow),
                                   pytest.param(1e3, marks=slow), pytest.param(1e6, marks=slow)])
def test_lit_scene_finite(scale):
    """Shadows of an area and a point light, one bounce: every entry of the
    image, of the reverse-mode gradient and of the forward-mode interior
    and boundary images is finite, and the boundary term is not zero."""
    img, g = _reverse("lit", scale, 1)
    assert np.all(np.isfinite(img))
    assert np.all(np.isfinite(g)), f"{np.sum(~np.isfinite(g))} of {g.size} entries"
    scene = _scene("lit", scale)
    params = pathgrad.parameters(scene, KEY, enable_grad=False)
    n = dr.width(params[KEY])
    tangent = np.tile([1.0, 0.3, 0.0], n // 3) + 0.5 * np.random.default_rng(0).normal(size=n)
    terms = pathgrad.gradient_images(scene, params, {KEY: mi.Float(tangent.astype(np.float32))},
                                     spp=4, seed=1)
    for name in ("interior", "boundary"):
        t = np.array(terms[name])
        assert np.all(np.isfinite(t)), f"{name}: {np.sum(~np.isfinite(t))} non-finite pixels"
    assert np.abs(np.array(terms["boundary"])).max() > 0


@pytest.mark.parametrize("scale", [pytest.param(1e3, marks=slow), pytest.param(1e6, marks=slow)])
def test_lit_scene_matches_unit_scale(scale):
    """Above Mitsuba's floor, with shadows: every boundary term agrees."""
    _check_matches_unit_scale("lit", scale)


@pytest.mark.parametrize("scale", [1e-6, pytest.param(1e-3, marks=slow),
                                   pytest.param(1e3, marks=slow), pytest.param(1e6, marks=slow)])
def test_emitting_ball_matches_unit_scale(scale):
    """Camera rays only (silhouettes and the shading terminator of the
    smooth ball), down to 1e-6 scene units."""
    _check_matches_unit_scale("emitting", scale)


def test_gradcheck_at_1e_minus_6():
    """The gradient at 1e-6 scene units against finite differences of the
    same render: passes with the boundary term, fails without it (and, as
    every gradcheck test, for a zero or sign-flipped gradient). The step
    moves the silhouette by about 0.05 pixel, as at scale 1."""
    scene = _scene("emitting", 1e-6)
    check_term(scene, KEY, [1, 0.3, 0], 0.006e-6, {"boundary": False}, spp=16, spp_fd=128,
               seeds=2)
