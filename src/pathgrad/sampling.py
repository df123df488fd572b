"""Discrete sampling that never waits for the device.

``mi.DiscreteDistribution`` checks its weights on the host when it is built
(non-negative, some mass), which makes every render stop and wait for the
kernels that computed them, and raises when no weight is positive.
:class:`DiscreteDistribution` here keeps the sum on the device: with no mass,
every sample gets probability 0 and the caller masks it out. Its sampling
rule is Mitsuba's (inverse CDF by binary search), so the same weights and
uniforms give the same indices.

The number of entries is not baked into the kernels (``dr.binary_search``
and a literal gather index would bake it): it is an opaque value, and only
the binary search's iteration count (the bit length of the last index)
is a literal. A distribution over a number of entries that changes from
render to render (the compacted candidate edges of
:mod:`pathgrad.boundary.shadow`) therefore reuses its kernels instead of
compiling, and keeping in the kernel cache, a new set for every count.
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
        # the last index, opaque: a literal would make every size a new kernel
        self._last = dr.opaque(mi.UInt32, max(self.size - 1, 0))
        # the total stays on the device (a width-1 array, not a Python float)
        self.sum = dr.gather(mi.Float, self.cdf, self._last)
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

        return _binary_search(max(self.size - 1, 0).bit_length(), self._last, below)

    def sample_reuse(self, u: mi.Float, active=True) -> tuple[mi.UInt32, mi.Float]:
        """Index as :meth:`sample`, and ``u`` rescaled to a fresh uniform
        number within the chosen entry's CDF interval."""
        index = self.sample(u, active)
        pmf = dr.gather(mi.Float, self.pmf, index, active) * self.normalization
        cdf = dr.gather(mi.Float, self.cdf, index - 1, active & (index > 0)) * self.normalization
        return index, dr.select(pmf > 0, (u - cdf) / pmf, 0.0)


def _binary_search(iterations: int, end: mi.UInt32, pred) -> mi.UInt32:
    """``dr.binary_search(0, end, pred)`` with ``end`` an array (opaque, so
    not part of the kernel) instead of a Python int: the same steps and
    result when ``iterations`` is ``end``'s bit length, as there."""
    start = mi.UInt32(0)
    for _ in range(iterations):
        middle = (start + end) >> 1
        cond = pred(middle)
        start = dr.select(cond, dr.minimum(middle + 1, end), start)
        end = dr.select(cond, end, middle)
    return start
