"""Film helpers (pathgrad.film) against Mitsuba's own film: the camera-sample
splat is Mitsuba's ratio estimator, the film-sample splat's normalisation is
the filter integral over the sampled region, for box, tent and Gaussian
filters, with and without sample_border and a crop window."""
import drjit as dr
import mitsuba as mi
import numpy as np
import pytest

import pathgrad  # noqa: F401
from pathgrad import film as film_ops

FILTERS = ["box", "tent", "gaussian"]


def make_film(rfilter, sample_border=False, crop=None):
    d = {"type": "hdrfilm", "width": 12, "height": 10, "rfilter": {"type": rfilter},
         "pixel_format": "rgb", "sample_border": sample_border}
    if crop:
        d.update(crop_offset_x=crop[0], crop_offset_y=crop[1], crop_width=crop[2],
                 crop_height=crop[3])
    return mi.load_dict(d)


def uniform_points(region: film_ops.FilmRegion, n_side: int, seed=0):
    """Stratified points over the region (n_side^2) and the region's area."""
    rng = np.random.default_rng(seed)
    g = (np.stack(np.meshgrid(np.arange(n_side), np.arange(n_side)), -1).reshape(-1, 2)
         + rng.random((n_side * n_side, 2))) / n_side
    lo, hi = region.lo, region.hi
    pts = lo + g * (hi - lo)
    return mi.Point2f(mi.Float(pts[:, 0].astype(np.float32)), mi.Float(pts[:, 1].astype(np.float32))), \
        float(np.prod(hi - lo))


def mitsuba_develop(film, pos, value):
    """Mitsuba's image of samples ``value`` at ``pos`` (weight 1 each)."""
    film.prepare([])
    block = film.create_block()
    block.put(pos, [value.x, value.y, value.z, mi.Float(1.0)])
    film.put_block(block)
    img = np.array(film.develop())
    film.clear()
    return img


@pytest.mark.parametrize("rfilter", FILTERS)
@pytest.mark.parametrize("sample_border", [False, True])
def test_camera_sample_splat_is_mitsubas_ratio(rfilter, sample_border):
    film = make_film(rfilter, sample_border, crop=(2, 1, 8, 7))
    region = film_ops.FilmRegion(film)
    pos, _ = uniform_points(region, 40)
    rng = np.random.default_rng(1)
    v = rng.random((dr.width(pos), 3)).astype(np.float32)
    value = mi.Color3f(*(mi.Float(v[:, i]) for i in range(3)))
    ours = np.array(film_ops.splat_camera_samples(film, pos, value))
    ref = mitsuba_develop(film, pos, value)
    assert ours.shape == ref.shape == (7, 8, 3)
    np.testing.assert_allclose(ours, ref, rtol=2e-5, atol=1e-6)


@pytest.mark.parametrize("rfilter", FILTERS)
@pytest.mark.parametrize("sample_border,crop", [(False, None), (True, None), (False, (3, 2, 6, 5)),
                                                (True, (3, 2, 6, 5))])
def test_film_sample_normalisation_is_the_filter_integral(rfilter, sample_border, crop):
    """Dense uniform points with density folded in estimate ∫k_p = W_p:
    the normalisation must match what Mitsuba's filter weights add up to,
    pixel by pixel (border pixels of a Gaussian lose part of their filter
    when sample_border is off)."""
    film = make_film(rfilter, sample_border, crop)
    region = film_ops.FilmRegion(film)
    pos, area = uniform_points(region, 400)
    n = dr.width(pos)
    weights = np.array(film_ops.accumulate(film, pos, [mi.Float(area)]))[..., 0] / n
    W = region.normalisation()
    assert W.shape == weights.shape == tuple(int(v) for v in film.crop_size())[::-1]
    np.testing.assert_allclose(W, weights, rtol=0.01)
    # constant radiance c has pixel value c whatever the filter and border
    c = mi.Color3f(0.5, 2.0, 3.0)
    img = np.array(film_ops.splat_film_samples(film, region, pos, c * area, 0.0, n))
    np.testing.assert_allclose(img, np.broadcast_to([0.5, 2.0, 3.0], img.shape), rtol=0.01)
    if rfilter == "gaussian" and not sample_border:
        assert W[0, 0] < 0.9 * W[W.shape[0] // 2, W.shape[1] // 2]   # the check has power


def test_sampled_size_and_region_follow_sample_border():
    film = make_film("gaussian", True, crop=(2, 1, 8, 7))
    b = film.rfilter().border_size()
    assert tuple(film_ops.sampled_size(film)) == (8 + 2 * b, 7 + 2 * b)
    r = film_ops.FilmRegion(film)
    np.testing.assert_array_equal(r.lo, [2 - b, 1 - b])
    np.testing.assert_array_equal(r.hi, [10 + b, 8 + b])
    inside = r.contains(mi.Point2f(mi.Float([2 - b, 5, 10.5 + b]), mi.Float([1 - b, 4, 4])))
    assert list(np.array(inside)) == [True, True, False]


def test_sample_adjoint_is_the_transpose_of_splat():
    """⟨grad_in, splat(v)⟩ is linear in v with gradient sample_adjoint."""
    sensor = mi.load_dict({"type": "perspective", "film": {"type": "hdrfilm", "width": 12,
                           "height": 10, "rfilter": {"type": "tent"}, "sample_border": True,
                                                           "pixel_format": "rgb"},
                           "sampler": {"type": "independent", "sample_count": 4}})
    film = sensor.film()
    sampler, spp = film_ops.prepare_sampler(sensor, 3, 4)
    _, weight, pos = film_ops.camera_rays(sensor, sampler)
    rng = np.random.default_rng(2)
    G = rng.random((10, 12, 3)).astype(np.float32)
    δL = film_ops.sample_adjoint(film, pos, weight, mi.TensorXf(G))
    v = rng.random((dr.width(pos), 3)).astype(np.float32)
    value = mi.Color3f(*(mi.Float(v[:, i]) for i in range(3)))
    img = np.array(film_ops.splat(film, pos, value * weight, 0.0))
    lhs = float(np.sum(G * img))
    rhs = float(np.sum(np.array(δL).T * v)) if np.array(δL).shape[0] == 3 else \
        float(np.sum(np.array(δL) * v))
    assert abs(lhs - rhs) < 1e-4 * abs(lhs)


@pytest.mark.parametrize("per_pixel", [3.0, 0.25])
@pytest.mark.parametrize("rfilter,sample_border", [("box", False), ("gaussian", False),
                                                   ("gaussian", True)])
def test_film_rays_spread_evenly_over_the_sampled_region(per_pixel, rfilter, sample_border):
    """film_rays: n lanes in n equal slices of the sampled pixels (raster
    order): whole multiples give every pixel exactly that many, fractions
    give every block of 1/fraction pixels exactly one; and splatting a
    constant (times the region's pixel count) gives it back everywhere,
    whatever the filter normalisation (exactly, for a box filter and whole
    samples per pixel)."""
    film = make_film(rfilter, sample_border)
    sensor = mi.load_dict({"type": "perspective", "film": film})
    size = np.array(film_ops.sampled_size(film))
    P = int(np.prod(size))
    n = int(per_pixel * P)
    sampler = mi.load_dict({"type": "independent"})
    sampler.seed(3, n)
    _, _, pos = film_ops.film_rays(sensor, sampler, n)
    u = np.array(pos.x) - (film.crop_offset()[0] - film.rfilter().border_size() * sample_border)
    v = np.array(pos.y) - (film.crop_offset()[1] - film.rfilter().border_size() * sample_border)
    k = np.floor(v).astype(int) * size[0] + np.floor(u).astype(int)
    counts = np.bincount(k, minlength=P)
    if per_pixel >= 1:
        assert np.all(counts == per_pixel)
    else:
        block = int(round(1 / per_pixel))
        assert np.all(counts.reshape(-1, block).sum(1) == 1)
    from pathgrad.boundary.camera import film_region
    img = np.array(film_ops.splat_film_samples(film, film_region(sensor), pos,
                                               mi.Color3f(2.0 * P), 0.0, n))
    tol = 0.05 if per_pixel >= 1 else 0.6   # a Gaussian over few samples per pixel
    assert np.mean(img) == pytest.approx(2.0, rel=tol)
    if per_pixel >= 1 and rfilter == "box":
        assert np.allclose(img, 2.0, rtol=1e-5)
