"""Discrete sampling that never waits for the device.

``mi.DiscreteDistribution`` checks its weights on the host when it is built
(non-negative, some mass), which makes every render stop and wait for the
kernels that computed them, and raises when no weight is positive.
:class:`DiscreteDistribution` here keeps the sum on the device: with no mass,
every sample gets probability 0 and the caller masks it out. Its sampling
rule is Mitsuba's (inverse CDF by binary search), so the same weights and
uniforms give the same indices.
"""

from __future__ import annotations

import drjit as dr
import mitsuba as mi


class DiscreteDistribution:
    """A distribution over ``len(weights)`` entries proportional to
    ``weights`` (non-negative ``mi.Float``; NaNs must be zeroed by the caller)."""

    def __init__(self, weights: mi.Float):
        self.pmf = mi.Float(weights)
        self.size = dr.width(self.pmf)
        self.cdf = dr.cumsum(self.pmf)
        # the total stays on the device (a width-1 array, not a Python float)
        self.sum = dr.gather(mi.Float, self.cdf, mi.UInt32(max(self.size - 1, 0)))
        self.normalization = dr.rcp(self.sum)
        dr.make_opaque(self.sum, self.normalization)

    def eval_pmf_normalized(self, index: mi.UInt32, active=True) -> mi.Float:
        """Probability of ``index`` (0 everywhere if there is no mass)."""
        p = dr.gather(mi.Float, self.pmf, index, active) * self.normalization
        return dr.select(self.sum > 0, p, 0.0)

    def sample(self, u: mi.Float, active=True) -> mi.UInt32:
        """Index of the first entry whose CDF exceeds ``u`` times the sum."""
        x = u * self.sum

        def below(i):
            c = dr.gather(mi.Float, self.cdf, i, active)
            return ((c < x) | (c == 0)) & (c != self.sum)

        return dr.binary_search(0, max(self.size - 1, 0), below)

    def sample_reuse(self, u: mi.Float, active=True) -> tuple[mi.UInt32, mi.Float]:
        """Index as :meth:`sample`, and ``u`` rescaled to a fresh uniform
        number within the chosen entry's CDF interval."""
        index = self.sample(u, active)
        pmf = dr.gather(mi.Float, self.pmf, index, active) * self.normalization
        cdf = dr.gather(mi.Float, self.cdf, index - 1, active & (index > 0)) * self.normalization
        return index, dr.select(pmf > 0, (u - cdf) / pmf, 0.0)
