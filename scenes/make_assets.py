"""Regenerate the small textures the scenes use (deterministic).

    python scenes/make_assets.py

checker.exr : 16x16 RGB (linear float) checkerboard with a colour ramp (bitmap-texture tests)
sky.exr     : 32x16 lat-long environment map, a bright warm sun-ish blob over
              a blue gradient (envmap tests)
"""
import os
import numpy as np
import mitsuba as mi

mi.set_variant("scalar_rgb")
here = os.path.join(os.path.dirname(os.path.abspath(__file__)), "textures")
os.makedirs(here, exist_ok=True)

# checkerboard with a colour ramp, linear float (differentiable texels)
y, x = np.mgrid[0:16, 0:16]
check = ((x // 4 + y // 4) % 2).astype(np.float32)
img = np.stack([0.25 + 0.6 * check * (x / 15.0),
                0.25 + 0.5 * check,
                0.25 + 0.6 * (1 - check) * (y / 15.0)], -1)
mi.Bitmap(img.astype(np.float32)).write(os.path.join(here, "checker.exr"))

# lat-long sky, linear float
h, w = 16, 32
v, u = (np.mgrid[0:h, 0:w] + 0.5) / np.array([h, w])[:, None, None]
sky = np.stack([0.2 + 0.3 * v, 0.3 + 0.3 * v, 0.6 + 0.2 * v], -1)
sun = np.exp(-((u - 0.3) ** 2 / 0.004 + (v - 0.3) ** 2 / 0.008))[..., None]
sky = (sky + 6.0 * sun * np.array([1.0, 0.9, 0.7])).astype(np.float32)
mi.Bitmap(sky).write(os.path.join(here, "sky.exr"))
print("wrote", os.listdir(here))
