"""Writing images people can look at: tonemapped PNGs, EXRs, gradient maps."""

from __future__ import annotations

import os

import numpy as np

__all__ = ["to_srgb", "write_exr", "write_png", "gradient_to_rgb", "write_gradient_png"]


def _np(img) -> np.ndarray:
    return np.asarray(np.array(img), dtype=np.float32)


def write_exr(path: str, img) -> None:
    """Write a linear float image (H, W, C) as OpenEXR."""
    import mitsuba as mi
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    mi.Bitmap(_np(img)).write(path)


def to_srgb(img, exposure: float = 0.0) -> np.ndarray:
    """Linear RGB (H, W, >=3) -> sRGB-encoded float (H, W, 3) in [0, 1] (clipped)."""
    a = _np(img)[..., :3] * 2.0 ** exposure
    a = np.where(a <= 0.0031308, 12.92 * a, 1.055 * np.power(np.maximum(a, 0), 1 / 2.4) - 0.055)
    return np.clip(a, 0, 1)


def write_png(path: str, img, exposure: float = 0.0, scale: int = 1) -> None:
    """Write a linear RGB image (H, W, 3) as an sRGB PNG (clipped), optionally
    scaled up ``scale`` times (nearest neighbour) so small renders are visible."""
    import imageio.v3 as iio
    a = (to_srgb(img, exposure) * 255 + 0.5).astype(np.uint8)
    if scale > 1:
        a = a.repeat(scale, 0).repeat(scale, 1)
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    iio.imwrite(path, a)


def gradient_to_rgb(grad, limit: float | None = None) -> np.ndarray:
    """Map a signed gradient image (H, W) or (H, W, C) (channels summed) to a
    blue-white-red diverging colour map in [0, 1]: blue negative, red
    positive, white zero. ``limit`` defaults to the 95th percentile of |g| (so a few extreme
    pixels, e.g. a light seen directly, do not wash out the rest)."""
    g = _np(grad)
    if g.ndim == 3:
        g = g[..., :3].sum(-1)
    if limit is None:
        limit = float(np.percentile(np.abs(g), 95)) or float(np.abs(g).max()) or 1.0
    t = np.clip(g / limit, -1, 1)[..., None]
    white = np.ones(3, np.float32)
    red, blue = np.array([0.75, 0.05, 0.05], np.float32), np.array([0.05, 0.2, 0.75], np.float32)
    return np.where(t >= 0, white + t * (red - white), white - t * (blue - white))


def write_gradient_png(path: str, grad, limit: float | None = None, scale: int = 1) -> None:
    """Write a gradient image as a diverging-colour PNG (see :func:`gradient_to_rgb`)."""
    import imageio.v3 as iio
    a = (gradient_to_rgb(grad, limit) * 255 + 0.5).astype(np.uint8)
    if scale > 1:
        a = a.repeat(scale, 0).repeat(scale, 1)
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    iio.imwrite(path, a)
