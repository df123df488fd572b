r"""Camera-path vertices for the boundary terms seen from inside a path.

The estimators of discontinuities seen *from* a path vertex
(:mod:`~pathgrad.boundary.indirect`, :mod:`~pathgrad.boundary.indirect_delta`)
share how they choose that vertex and how they return to the film: film
samples stratified over the film, a detached walk by BSDF sampling that
stops at one vertex with a known probability, and a splat of the boundary
integrand at the film sample, with the walk's throughput divided by its
stopping probability, so that

.. math::
    \partial I_p \mathrel{+}= \mathbb{E}\Big[\frac{\beta_k}{P(\text{stop at } k)}\,
        (\text{boundary integral at } x_k)\Big]

for every vertex :math:`x_k` with a non-delta BSDF up to the walk's last depth.
"""

from __future__ import annotations

import drjit as dr
import mitsuba as mi

from ..film import film_rays, sampled_size, splat_film_samples
from .camera import film_region
from .estimator import BoundaryContext, Samples

#: probability that the walk stops at a vertex with a non-delta BSDF (any
#: value in (0, 1) is unbiased). The first vertex carries most of the
#: throughput: measured on the three indirect test scenes (32 px, 64 spp),
#: 0.8 instead of 0.5 cut the indirect term's variance by 1.2-1.6x, the
#: depth-4 closed room included
STOP_PROB = 0.8


class Walk(Samples):
    """The vertex a walk stopped at: ``si``, its preliminary hit ``pi``,
    the (detached) ray that found it ``ray``, its ``depth``, the throughput
    ``β`` divided by the probability of stopping there, and ``active``."""


@dr.syntax
def walk_to_vertex(scene: mi.Scene, sampler: mi.Sampler, ray: mi.Ray3f, last: mi.UInt32) -> Walk:
    """Walk camera paths by BSDF sampling (detached) and stop at one vertex
    each: with probability ``STOP_PROB`` at a vertex with a non-delta BSDF,
    surely at depth ``last``; delta vertices are walked through."""
    ctx = mi.BSDFContext()
    ray = mi.Ray3f(ray)
    depth = mi.UInt32(0)
    β = mi.Spectrum(1)
    walking = mi.Bool(True)
    stopped = mi.Bool(False)
    pi = scene.ray_intersect_preliminary(ray, coherent=True)
    while dr.hint(walking, label="pathgrad vertex walk"):
        si = pi.compute_surface_interaction(ray, mi.RayFlags.All)
        bsdf = si.bsdf(ray)
        alive = si.is_valid()
        smooth = mi.has_flag(bsdf.flags(), mi.BSDFFlags.Smooth)
        at_last = depth >= last
        p_stop = dr.select(smooth, dr.select(at_last, 1.0, STOP_PROB), 0.0)
        ξ = sampler.next_1d()
        stop = alive & (ξ < p_stop)
        β = dr.select(stop, β / p_stop, β)
        go = alive & ~stop & ~at_last
        bs, bsdf_w = bsdf.sample(ctx, si, sampler.next_1d(), sampler.next_2d(), go)
        β = dr.select(go, β * bsdf_w / (1 - p_stop), β)
        go &= dr.any(bsdf_w != 0)
        ray_next = si.spawn_ray(si.to_world(bs.wo))
        pi_next = scene.ray_intersect_preliminary(ray_next, coherent=False, active=go)
        ray = dr.select(go, ray_next, ray)
        pi = dr.select(go, pi_next, pi)
        depth = dr.select(go, depth + 1, depth)
        stopped |= stop
        walking = go
    si = pi.compute_surface_interaction(ray, mi.RayFlags.All, stopped)
    return Walk(si=si, pi=pi, ray=ray, depth=depth, β=β, active=stopped & si.is_valid())


def film_vertices(ctx: BoundaryContext, sampler: mi.Sampler, n: int, last: int) -> Samples:
    """``n`` film samples stratified over the film and, for each, the path
    vertex a walk stopped at (depth at most ``last``, a Python int: -1 in
    ``max_depth`` makes it huge). Returns ``pos`` (splat positions),
    ``ray_att`` (camera rays, attached when the camera moves), ``cam_w``
    (camera weights) and ``walk`` (:class:`Walk`)."""
    with dr.resume_grad(when=ctx.motion.camera):   # attached for the splat
        ray_att, cam_w, pos = film_rays(ctx.sensor, sampler, n)
    # opaque: max_depth changes from render to render without recompiling
    last = dr.opaque(mi.UInt32, min(last, 0xFFFFFFF))
    walk = walk_to_vertex(ctx.scene, sampler, mi.Ray3f(dr.detach(ray_att)), last)
    return Samples(pos=pos, ray_att=ray_att, cam_w=cam_w, walk=walk)


def splat_at_film(ctx: BoundaryContext, pos, contrib: mi.Spectrum, n: int) -> mi.TensorXf:
    """Splat per-film-sample contributions (1/density of the vertex and the
    discontinuity point already in ``contrib``) as an estimate of the film
    integral: times ``P``, the inverse density of the film positions."""
    P = int(dr.prod(sampled_size(ctx.film)))
    return splat_film_samples(ctx.film, film_region(ctx.sensor), pos, contrib * P, 0.0, n)
