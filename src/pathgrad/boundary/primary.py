r"""Boundary term of primary visibility, by silhouette edge sampling.

A pixel value is :math:`I_p = \frac{1}{W_p}\int k_p(u)\, L(u)\, du` over film
positions :math:`u` (pixels), with reconstruction filter :math:`k_p` and its
integral :math:`W_p` over the sampled film region. The radiance :math:`L(u)`
seen through the film jumps across the projected silhouettes of meshes. When
a silhouette moves with normal velocity :math:`V_n = \partial_\theta u \cdot
n` (``n`` a unit normal of the projected edge), the region on the ``-n`` side
grows, and Reynolds' transport theorem gives the boundary term

.. math::
    \partial_\theta I_p \mathrel{+}= \frac{1}{W_p} \int_{\text{silhouettes}}
        k_p(u)\, \big(L^-(u) - L^+(u)\big)\, V_n(u)\, d\ell(u),

with :math:`L^\pm` the radiance just on either side (``u ± ε n``). This is the
edge-sampling formulation of Li, Aittala, Durand and Lehtinen,
*Differentiable Monte Carlo Ray Tracing through Edge Sampling* (SIGGRAPH Asia
2018), restricted to camera rays.

Estimator: among the silhouette edges of every mesh whose vertex positions
are differentiable (open edges, and edges between a face turned towards the
camera and one turned away), pick one with probability proportional to its
projected length clipped to the sampled film region, then a point uniform
on the clipped projected segment, so the pdf is :math:`1/\Lambda` per pixel of
length (:math:`\Lambda` = total clipped length). The point counts only if its
3D edge point is the first surface along its camera ray. :math:`L^\pm` are
full path-traced estimates (the primal path tracer, sharing random numbers
between the two sides so that their difference is less noisy). The 3D edge
point is re-projected with AD attached to the vertex positions, which gives
:math:`V_n`. Each sample is splatted through the film's filter exactly where
the primal pass would splat it.
"""

from __future__ import annotations

import drjit as dr
import mitsuba as mi
import numpy as np

from .. import interior
from .camera import PinholeCamera
from .edges import edge_table

#: offset of the two side rays from the edge, in pixels
SIDE_OFFSET = 1e-3


def differentiable_meshes(scene: mi.Scene) -> list:
    """Meshes of the scene whose vertex positions carry gradients."""
    out = []
    for shape in scene.shapes():
        if isinstance(shape, mi.Mesh) and dr.grad_enabled(shape.vertex_positions_buffer()):
            out.append(shape)
    return out


def _concat(arrays, cls):
    return arrays[0] if len(arrays) == 1 else dr.concat(arrays) if hasattr(dr, "concat") \
        else cls(np.concatenate([np.array(a) for a in arrays]))


class _Edges:
    """Silhouette candidates of all differentiable meshes, as flat arrays.

    ``p0, p1``: endpoint positions (attached), ``n0, n1``: detached face
    normals (``n1`` is zero for open edges)."""

    def __init__(self, meshes):
        p0, p1, n0, n1, is_open = [], [], [], [], []
        for mesh in meshes:
            table = edge_table(mesh)
            if table.count == 0:
                continue
            pos = mesh.vertex_positions_buffer()
            faces = mesh.faces_buffer()
            v0 = mi.UInt32(table.v0.astype(np.uint32))
            v1 = mi.UInt32(table.v1.astype(np.uint32))
            p0.append(dr.gather(mi.Point3f, pos, v0))
            p1.append(dr.gather(mi.Point3f, pos, v1))
            with dr.suspend_grad():
                n0.append(self._face_normal(pos, faces, table.f0))
                n1.append(self._face_normal(pos, faces, np.maximum(table.f1, 0)))
            is_open.append(mi.Bool(table.f1 < 0))
        self.count = sum(dr.width(a) for a in p0)
        if not self.count:
            return
        self.p0 = _concat(p0, mi.Point3f)
        self.p1 = _concat(p1, mi.Point3f)
        self.n0 = _concat(n0, mi.Vector3f)
        self.n1 = _concat(n1, mi.Vector3f)
        self.open = _concat(is_open, mi.Bool)

    @staticmethod
    def _face_normal(pos, faces, f):
        f = mi.UInt32(np.asarray(f, np.uint32))
        idx = [dr.gather(mi.UInt32, faces, 3 * f + k) for k in range(3)]
        a, b, c = (dr.gather(mi.Point3f, dr.detach(pos), i) for i in idx)
        return dr.cross(b - a, c - a)


def _clip_2d(a, b, lo, hi):
    """Liang-Barsky: parameter range [t0, t1] of segment a->b inside the box
    [lo, hi]; empty where t0 >= t1."""
    t0, t1 = mi.Float(0), mi.Float(1)
    d = b - a
    for axis in range(2):
        da, aa = d[axis], a[axis]
        for bound, sign in ((float(lo[axis]), -1.0), (float(hi[axis]), 1.0)):
            # inside: sign * (aa + t da - bound) <= 0
            num = sign * (bound - aa)
            den = sign * da
            t = num / den
            parallel = den == 0
            outside_parallel = parallel & (num < 0)
            t0 = dr.select(~parallel & (den < 0), dr.maximum(t0, t), t0)
            t1 = dr.select(~parallel & (den > 0), dr.minimum(t1, t), t1)
            t1 = dr.select(outside_parallel, -1.0, t1)
    return t0, t1


def estimate(scene: mi.Scene, sensor: mi.Sensor, seed: int, samples_per_pixel: float,
             max_depth: int, rr_depth: int):
    """The primary boundary term as an image of shape (H, W, C) whose value
    is zero and whose derivative is the boundary term (forward mode:
    ``dr.forward_to``; reverse: ``dr.backward_from(image * grad)``). Returns
    None when no mesh of the scene has differentiable vertex positions or no
    silhouette is in view. Must be called with gradients enabled."""
    meshes = differentiable_meshes(scene)
    if not meshes or samples_per_pixel <= 0:
        return None
    camera = PinholeCamera(sensor)
    edges = _Edges(meshes)
    if not edges.count:
        return None
    film = sensor.film()

    with dr.suspend_grad():
        # --- which edges are silhouettes, and their clipped projections ----
        c = camera.origin
        p0, p1 = dr.detach(edges.p0), dr.detach(edges.p1)
        s0 = dr.dot(edges.n0, c - p0)
        s1 = dr.dot(edges.n1, c - p0)
        silhouette = edges.open | (s0 * s1 < 0)

        # clip the 3D segment to the half-space in front of the near plane
        _, z0 = camera.project(p0)
        _, z1 = camera.project(p1)
        zn = mi.Float(camera.near)
        dz = z1 - z0
        s_lo = dr.select(z0 >= zn, 0.0, (zn - z0) / dz)
        s_hi = dr.select(z1 >= zn, 1.0, (zn - z0) / dz)
        in_front = (z0 >= zn) | (z1 >= zn)
        q0 = dr.lerp(p0, p1, s_lo)
        q1 = dr.lerp(p0, p1, s_hi)
        a, za = camera.project(q0)
        b, zb = camera.project(q1)
        t_lo, t_hi = _clip_2d(a, b, camera.region_lo, camera.region_hi)
        length = dr.norm(b - a) * dr.maximum(t_hi - t_lo, 0.0)
        weight = dr.select(silhouette & in_front & dr.isfinite(length), length, 0.0)
        total = dr.sum(weight)
        dr.eval(weight, total)
        Λ = float(total[0])
        if not Λ > 0:
            return None
        distr = mi.DiscreteDistribution(weight)

        # --- sample edge points -------------------------------------------
        n_pixels = int(dr.prod(film.crop_size()))
        n = max(int(round(samples_per_pixel * n_pixels)), 1)
        sampler = mi.load_dict({"type": "independent"})
        sampler.seed(seed ^ 0x5BD1E995, n)
        idx = distr.sample(sampler.next_1d())
        ξ = sampler.next_1d()
        g = lambda arr: dr.gather(type(arr), arr, idx)  # noqa: E731
        a_i, b_i, za_i, zb_i = g(a), g(b), g(za), g(zb)
        t = dr.lerp(g(t_lo), g(t_hi), ξ)
        u = dr.lerp(a_i, b_i, t)                         # film position
        # perspective-correct parameter on the (near-clipped) 3D segment
        s_c = t * za_i / dr.maximum((1 - t) * zb_i + t * za_i, 1e-20)
        s = dr.lerp(g(s_lo), g(s_hi), s_c)
        d2 = dr.normalize(b_i - a_i)
        normal = mi.Vector2f(-d2.y, d2.x)

        # --- is the edge point the first surface on its camera ray? -------
        # A ray aimed at the edge point itself grazes the adjacent faces and
        # is numerically unreliable. Instead: the point is visible when at
        # least one of the two side rays reaches its depth (the side facing
        # away from the mesh passes beside it); an occluder in front of the
        # edge blocks both side rays.
        ray_m, w_m = camera.rays(u - SIDE_OFFSET * normal)
        ray_p, w_p = camera.rays(u + SIDE_OFFSET * normal)
        x = dr.lerp(g(p0), g(p1), s)
        dist = dr.norm(x - c)
        reach = mi.Float(0)
        for ray in (ray_m, ray_p):
            pi = scene.ray_intersect_preliminary(ray, coherent=True)
            d_hit = dr.select(pi.is_valid(), dr.norm(ray(pi.t) - c), dr.inf)
            reach = dr.maximum(reach, d_hit)
        visible = reach >= dist * (1 - 1e-3)

        # --- radiance on both sides (shared random numbers) ----------------
        L_m, hit_m = interior.trace(dr.ADMode.Primal, scene, sampler.clone(), ray_m,
                                    visible, max_depth, rr_depth)
        L_p, hit_p = interior.trace(dr.ADMode.Primal, scene, sampler, ray_p,
                                    visible, max_depth, rr_depth)
        ΔL = L_m * w_m - L_p * w_p
        Δα = dr.select(hit_m, 1.0, 0.0) - dr.select(hit_p, 1.0, 0.0)

    # --- attach: normal velocity of the edge point in film space -----------
    x_att = dr.lerp(dr.gather(mi.Point3f, edges.p0, idx),
                    dr.gather(mi.Point3f, edges.p1, idx), s)
    u_att, _ = camera.project(x_att)
    V_n = dr.dot(u_att - dr.detach(u_att), normal)       # value 0, derivative V·n
    scale = dr.select(visible, Λ * V_n, 0.0)

    # --- splat through the film's filter, normalise like the primal --------
    rgb = ΔL * scale
    channels = [rgb.x, rgb.y, rgb.z]
    alpha = mi.has_flag(film.flags(), mi.FilmFlags.Alpha)
    if alpha:
        channels.append(Δα * scale)
    block = mi.ImageBlock(film.crop_size(), film.crop_offset(), len(channels),
                          film.rfilter(), border=False, normalize=False)
    block.put(u, channels)
    W = camera.normalisation() * n
    img = block.tensor() / mi.TensorXf(np.repeat(W[..., None], len(channels), -1).astype(np.float32))
    return img
