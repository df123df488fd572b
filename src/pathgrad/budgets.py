r"""Default sample budgets of the boundary estimators: the split of samples
between the interior term and each boundary term that gives the least
gradient variance for the time spent.

The gradient is a sum of independent estimates, :math:`g = g_I + \sum_B g_B`,
the interior term from :math:`n_I` camera samples and each boundary term
:math:`B` from :math:`n_B` samples of its own. With :math:`\sigma^2` the
variance of one sample's contribution (the trace of its covariance over all
differentiable parameters) and :math:`c` the cost of one sample,

.. math::
    \operatorname{Var} g = \frac{\sigma_I^2}{n_I} + \sum_B \frac{\sigma_B^2}{n_B},
    \qquad T = c_I n_I + \sum_B c_B n_B .

Minimising the variance for a fixed time :math:`T` (Lagrange; Neyman's
allocation) gives

.. math::
    \frac{n_B}{n_I} = \frac{\sigma_B}{\sigma_I} \sqrt{\frac{c_I}{c_B}},

at which point every term's variance is proportional to the time spent on
it: :math:`\operatorname{Var} g_B / \operatorname{Var} g_I = c_B n_B / (c_I n_I)`
-- the balance the default budget reaches (``tests/test_budgets.py``).
:math:`n_I` is fixed by the user's ``spp``; the boundary budgets follow.

:math:`\sigma` comes from a *pilot*: two independent gradients of each term
at a small sample count, :math:`\sigma^2 \approx n\,\|g^{(1)} - g^{(2)}\|^2 / 2`,
for a fixed pseudo-random image adjoint (so forward and reverse mode get the
same budgets), computed once per scene, sensor and set of differentiable
parameters and cached. :math:`c` are per-estimator constants relative to one
interior camera sample (:data:`RELATIVE_COST`, measured by
``benchmarks/throughput.py``), so budgets do not depend on timings.

Bounds: the boundary terms together may take at most a share
(``boundary_time_share``, default :data:`MAX_TIME_SHARE`) of the interior
term's time (a scene whose interior term has no noise would
otherwise get unbounded boundary samples), and each gets at least
:data:`MIN_SPP` samples per pixel.
"""

from __future__ import annotations

import numpy as np

#: cost of one boundary sample relative to one interior camera sample, per
#: estimator (benchmarks/throughput.py, 128x128 shadow scenes, 2-core LLVM,
#: max_depth 2). The shadow estimator's ratio was 1.35-2.27 from 64 to 16384
#: spp (the interior's per-sample cost falls at high spp): the high end is
#: used, so that the time cap holds there. Primary 0.68, point-light
#: shadows 0.27 (at 128 spp); the terminator and analytic estimators are not
#: measured alone and take their closest kin's value. The path-vertex
#: estimators (render + backward time added by the term, over the interior's
#: alone; indirect scenes, depth 3-4, 32-96 px, 64-256 spp): indirect
#: 1.7-1.8, indirect_delta 0.54-0.61.
RELATIVE_COST = {"primary": 0.7, "analytic": 0.7, "shadow": 2.3, "analytic_shadow": 2.3,
                 "shadow_delta": 0.3, "terminator": 1.0,
                 "indirect": 1.8, "indirect_delta": 0.6}
#: the boundary terms together take at most this share of the interior's time
#: (default of the integrator's ``boundary_time_share``)
MAX_TIME_SHARE = 0.5
#: fewest samples per pixel a boundary term gets by default
MIN_SPP = 1.0 / 64
#: samples per pixel of each term's pilot gradients (two of them per term)
PILOT_SPP = 1


def unit_variance(g1: np.ndarray, g2: np.ndarray, spp: float) -> float:
    """Variance of a term's gradient at one sample per pixel, from two
    independent estimates at ``spp`` samples per pixel each:
    spp ‖g1 − g2‖² / 2 (the variance falls as 1 / spp)."""
    d = np.asarray(g1, np.float64) - np.asarray(g2, np.float64)
    return float(spp * np.sum(d * d) / 2)


def allocate(var_interior: float, var_boundary: dict, time_share: float = MAX_TIME_SHARE) -> dict:
    r"""Boundary samples per pixel per interior sample per pixel, per
    estimator (name -> :math:`n_B / n_I`): the cost-optimal split of the
    module docstring, within the time cap ``time_share`` (the floor
    :data:`MIN_SPP` is applied by the caller, who knows the spp). ``var_*``:
    variances at one sample per pixel (:func:`unit_variance`)."""
    ratio = {}
    for name, var in var_boundary.items():
        c = RELATIVE_COST.get(name, 1.0)
        if var_interior > 0:
            ratio[name] = float(np.sqrt(var / var_interior / c))
        else:
            ratio[name] = np.inf if var > 0 else 0.0
    unbounded = any(np.isinf(r) for r in ratio.values())
    if unbounded:
        # no interior noise: the boundary terms share the whole cap by σ_B / √c_B
        ratio = {k: float(np.sqrt(v / RELATIVE_COST.get(k, 1.0))) for k, v in var_boundary.items()}
    # the time cap: Σ c_B n_B <= time_share · c_I n_I, scaled down together
    time = sum(RELATIVE_COST.get(k, 1.0) * r for k, r in ratio.items())
    if time > time_share or (unbounded and time > 0):
        ratio = {k: r * time_share / time for k, r in ratio.items()}
    return ratio
