"""The primal image agrees with Mitsuba's ``path`` integrator within noise."""
import numpy as np
import mitsuba as mi
import pytest

import pathgrad
from conftest import scene_path


def _mean_and_sem(render, seeds):
    imgs = np.stack([np.array(render(s), dtype=np.float64) for s in seeds])
    return imgs.mean(0), imgs.std(0, ddof=1) / np.sqrt(len(seeds))


@pytest.mark.parametrize("fname,depth", [("cbox.xml", 6), ("materials.xml", 3), ("envmap.xml", 3)])
def test_primal_matches_mitsuba_path(fname, depth):
    """Per-pixel z-scores of the difference of two independent estimates
    (ours, Mitsuba's) have mean square about 1 when both estimate the same
    image. We require < 1.6, and show the same statistic rejects an image
    that is 3% too bright."""
    scene = pathgrad.load_scene(scene_path(fname), res=24, max_depth=depth)
    ref_integrator = mi.load_dict({"type": "path", "max_depth": depth})
    ours, se_o = _mean_and_sem(lambda s: pathgrad.render(scene, spp=64, seed=s), range(8))
    ref, se_r = _mean_and_sem(lambda s: mi.render(scene, integrator=ref_integrator,
                                                  spp=64, seed=100 + s), range(8))
    var = se_o ** 2 + se_r ** 2 + 1e-12
    chi2 = np.mean((ours - ref) ** 2 / var)
    chi2_biased = np.mean((1.03 * ours - ref) ** 2 / var)
    print(f"{fname}: mean z^2 = {chi2:.3f}, with +3% bias {chi2_biased:.3f}")
    assert chi2 < 1.6
    assert chi2_biased > 1.6, "the statistic cannot see a 3% bias at this noise level"
