r"""Film concerns shared by the interior and the boundary estimators: the
camera sampler, one camera ray per sample, and splatting samples into an
image through the film's reconstruction filter.

Coordinates are film pixels of the *full* film (x right, y down); the crop
window starts at ``crop_offset``. A pixel value is

.. math::
    I_p = \frac{1}{W_p} \int k_p(u)\, L(u)\, du, \qquad
    W_p = \int k_p(u)\, du,

over the film region that is sampled (the crop window, grown by the filter's
border when ``sample_border`` is on), with :math:`k_p` the filter centred on
pixel :math:`p`. Three estimators of such integrals are splatted here:

* :func:`splat` -- the primal image, Mitsuba's own ratio estimator
  :math:`\sum_i k_p(u_i) L_i / \sum_i k_p(u_i)` (``Film.develop``);
* :func:`splat_camera_samples` -- the same ratio for values attached to AD,
  with the denominator detached (a boundary term evaluated at the camera
  samples themselves);
* :func:`splat_film_samples` -- :math:`\frac{1}{n W_p} \sum_i k_p(u_i)
  v_i`, for ``n`` points drawn anywhere on the film with their own density
  folded into :math:`v_i` (edge samples).
"""

from __future__ import annotations

import drjit as dr
import mitsuba as mi
import numpy as np

#: at most this many samples in one wavefront (Dr.Jit's 32-bit lane index)
MAX_SAMPLES = 2**32


def has_alpha(film: mi.Film) -> bool:
    return mi.has_flag(film.flags(), mi.FilmFlags.Alpha)


def sampled_size(film: mi.Film) -> mi.ScalarVector2u:
    """Pixels (x, y) in which camera samples are drawn: the crop window plus
    the filter border when ``sample_border`` is on."""
    size = film.crop_size()
    if film.sample_border():
        size += 2 * film.rfilter().border_size()
    return size


def prepare_sampler(sensor: mi.Sensor, seed: int, spp: int) -> tuple[mi.Sampler, int]:
    """Clone the sensor's sampler, set its sample count (``spp`` > 0; 0 keeps
    the sensor's) and seed it for one wavefront covering the sampled film
    region. Returns the sampler and its samples per pixel."""
    film = sensor.film()
    sampler = sensor.sampler().clone()
    if spp:
        sampler.set_sample_count(spp)
    spp = sampler.sample_count()
    sampler.set_samples_per_wavefront(spp)
    n = dr.prod(sampled_size(film)) * spp
    if n > MAX_SAMPLES:
        raise ValueError(f"{n} samples exceed 2^32: use fewer samples per pixel "
                         "or render in several passes with different seeds.")
    sampler.seed(seed, n)
    film.prepare([])
    return sampler, spp


def camera_rays(sensor: mi.Sensor, sampler: mi.Sampler):
    """One camera ray per sample, pixel by pixel (``spp`` consecutive lanes
    per pixel). Returns ``(ray, weight, splat_pos)``, ``splat_pos`` in film
    pixels: the sample position, or the pixel corner for a box filter (so
    that a sample never leaks into a neighbour through rounding)."""
    film = sensor.film()
    rfilter = film.rfilter()
    border = rfilter.border_size() if film.sample_border() else 0
    size_b = sampled_size(film)
    spp = sampler.sample_count()

    idx = dr.arange(mi.UInt32, dr.prod(size_b) * spp) // spp
    pixel = mi.Vector2i(mi.Int32(idx % size_b[0]), mi.Int32(idx // size_b[0]))
    pixel += mi.Vector2i(film.crop_offset()) - border
    pos = mi.Vector2f(pixel) + sampler.next_2d()

    ray, weight = _sensor_rays(sensor, sampler, pos)
    splat_pos = mi.Vector2f(pixel) if rfilter.is_box_filter() else pos
    return ray, weight, splat_pos


def film_rays(sensor: mi.Sensor, sampler: mi.Sampler, n: int):
    """``n`` camera rays spread evenly over the sampled film region, for
    estimators whose budget need not be whole samples per pixel: lane ``i``
    falls uniformly in the ``i``-th of ``n`` equal slices of the region's
    pixels (raster order), so the positions have density ``n / P`` per
    pixel (``P`` pixels, :func:`sampled_size`), stratified. Returns
    ``(ray, weight, splat_pos)`` like :func:`camera_rays`; splat them with
    :func:`splat_film_samples` and values times ``P``."""
    film = sensor.film()
    size_b = sampled_size(film)
    P = int(dr.prod(size_b))
    border = film.rfilter().border_size() if film.sample_border() else 0
    # k = floor((i + ξ) P / n) in integers (a float index loses lanes past 2^24);
    # n opaque, or every budget would compile its own kernel
    m = mi.UInt64(dr.minimum(mi.UInt32(sampler.next_1d() * P), P - 1))
    k = mi.UInt32((dr.arange(mi.UInt64, n) * P + m) // dr.opaque(mi.UInt64, n))
    pixel = mi.Vector2i(mi.Int32(k % size_b[0]), mi.Int32(k // size_b[0]))
    pixel += mi.Vector2i(film.crop_offset()) - border
    pos = mi.Vector2f(pixel) + sampler.next_2d()
    ray, weight = _sensor_rays(sensor, sampler, pos)
    splat_pos = mi.Vector2f(pixel) if film.rfilter().is_box_filter() else pos
    return ray, weight, splat_pos


def _sensor_rays(sensor: mi.Sensor, sampler: mi.Sampler, pos: mi.Vector2f):
    """The sensor's rays and weights through film positions ``pos`` (film
    pixels, full-film coordinates), with the sampler's next numbers for
    aperture, time and wavelength."""
    film = sensor.film()
    # film pixels -> [0, 1]^2 over the crop window (what the sensor expects)
    uv = (pos - mi.ScalarVector2f(film.crop_offset())) / mi.ScalarVector2f(film.crop_size())
    aperture = sampler.next_2d() if sensor.needs_aperture_sample() else mi.Vector2f(0.5)
    time = sensor.shutter_open()
    if sensor.shutter_open_time() > 0:
        time += sampler.next_1d() * sensor.shutter_open_time()
    wavelength = sampler.next_1d() if mi.is_spectral else 0.0
    return sensor.sample_ray(time, wavelength, uv, aperture)


def _channels(film: mi.Film, value: mi.Spectrum, alpha) -> list:
    if mi.is_spectral:
        raise NotImplementedError("pathgrad supports RGB and mono variants")
    rgb = mi.Color3f(value.x) if mi.is_monochromatic else value
    out = [rgb.x, rgb.y, rgb.z]
    if has_alpha(film):
        out.append(mi.Float(alpha))
    return out


def splat(film: mi.Film, pos, value: mi.Spectrum, alpha, weight=1.0,
          coalesce: bool = True) -> mi.TensorXf:
    """Splat one value per camera sample into a fresh block of ``film`` and
    develop it (Mitsuba's weight-normalised image). Returns (H, W, C)."""
    block = film.create_block()
    block.set_coalesce(block.coalesce() and coalesce)
    block.put(pos, _channels(film, value, alpha) + [mi.Float(weight)])
    film.put_block(block)
    return film.develop()


def sample_adjoint(film: mi.Film, pos, weight: mi.Spectrum, grad_in: mi.TensorXf,
                   coalesce: bool = True) -> mi.Spectrum:
    """Adjoint radiance of each camera sample: the transpose of :func:`splat`
    (filter weights and the normalisation of ``develop``) applied to the
    image adjoint ``grad_in``, times the sample weight."""
    with dr.resume_grad():
        one = dr.ones(mi.Spectrum, dr.width(pos))
        dr.enable_grad(one)
        img = splat(film, pos, one * weight, 0.0, coalesce=coalesce)
        dr.set_grad(img, grad_in)
        dr.enqueue(dr.ADMode.Backward, img)
        dr.traverse(dr.ADMode.Backward)
        δL = dr.grad(one)
    film.clear()
    return δL


def accumulate(film: mi.Film, pos, channels: list) -> mi.TensorXf:
    """Filter-weighted sums Σ_i k_p(u_i) c_i over the crop window, without any
    normalisation (samples outside still reach the pixels their filter
    covers). Returns (H, W, len(channels)); attached if the channels are."""
    block = mi.ImageBlock(film.crop_size(), film.crop_offset(), len(channels),
                          film.rfilter(), border=False, normalize=False)
    block.put(pos, channels)
    return block.tensor()


def splat_camera_samples(film: mi.Film, pos, value: mi.Spectrum, alpha=0.0) -> mi.TensorXf:
    """Ratio estimate Σ k_p(u_i) v_i / Σ k_p(u_i) for one value per camera
    sample (positions ``pos`` from :func:`camera_rays`); the denominator is
    detached, so the derivative is that of the numerator. Returns (H, W, C)."""
    ch = _channels(film, value, alpha)
    t = accumulate(film, pos, ch + [mi.Float(1.0)])
    nc = len(ch)
    wsum = dr.detach(t[:, :, nc:nc + 1])
    return t[:, :, 0:nc] / dr.maximum(wsum, 1e-20)


class FilmRegion:
    """The film region where camera samples are drawn, ``[lo, hi]`` in film
    pixels (numpy (2,) each), and the per-pixel filter integral over it."""

    def __init__(self, film: mi.Film):
        self.rfilter = film.rfilter()
        self.crop_offset = np.array(film.crop_offset(), float)
        self.crop_size = np.array(film.crop_size(), float)
        border = self.rfilter.border_size() if film.sample_border() else 0
        self.lo = self.crop_offset - border
        self.hi = self.lo + self.crop_size + 2 * border
        self._norm = None

    def contains(self, u: mi.Point2f) -> mi.Bool:
        return (u.x >= self.lo[0]) & (u.x <= self.hi[0]) & \
            (u.y >= self.lo[1]) & (u.y <= self.hi[1])

    def normalisation(self) -> np.ndarray:
        """W_p = ∫ k_p(u) du over the region, shape (H, W) of the crop window,
        by the trapezoidal rule on the filter (computed once)."""
        if self._norm is not None:
            return self._norm
        r = float(self.rfilter.radius())
        xs = np.linspace(-r, r, 2001)
        with dr.suspend_grad():
            k = np.array(self.rfilter.eval(mi.Float(xs)), np.float64).ravel()

        box = self.rfilter.is_box_filter()

        def axis(n, off, lo, hi):
            out = np.empty(n)
            for i, c in enumerate(off + np.arange(n) + 0.5):
                if box:   # exact: the trapezoidal rule overshoots a step by 1/2000
                    out[i] = k[len(k) // 2] * max(min(c + r, hi) - max(c - r, lo), 0.0)
                    continue
                inside = (c + xs >= lo) & (c + xs <= hi)
                out[i] = np.trapezoid(np.where(inside, k, 0.0), xs)
            return out

        cw, ch = (int(v) for v in self.crop_size)
        wx = axis(cw, self.crop_offset[0], self.lo[0], self.hi[0])
        wy = axis(ch, self.crop_offset[1], self.lo[1], self.hi[1])
        self._norm = wy[:, None] * wx[None, :]
        return self._norm


def splat_film_samples(film: mi.Film, region: FilmRegion, pos, value: mi.Spectrum,
                       alpha, n: int) -> mi.TensorXf:
    """Estimate (1/W_p) ∫ k_p(u) v(u) du from ``n`` film points ``pos``
    (full-film pixels) whose values ``value`` already hold 1/density:
    Σ_i k_p(u_i) v_i / (n W_p). Returns (H, W, C)."""
    ch = _channels(film, value, alpha)
    W = region.normalisation() * n
    W = np.repeat(W[..., None], len(ch), -1).astype(np.float32)
    return accumulate(film, pos, ch) / mi.TensorXf(W)
