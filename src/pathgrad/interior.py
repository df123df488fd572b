r"""Interior term: path-traced radiance and its derivative by path replay.

For a camera ray with origin :math:`x_0` and direction :math:`\omega_0` this
module estimates the radiance

.. math::
    L(x_0, \omega_0) = L_e(x_1, -\omega_0)
        + \int_{S^2} f(x_1, \omega_0, \omega_1)\, L(x_1, \omega_1)\,
          |\cos\theta_1|\, d\omega_1

by unidirectional path tracing with next-event estimation (NEE), multiple
importance sampling (power heuristic) between emitter and BSDF sampling, and
Russian roulette. Its derivative :math:`\partial L` is split into an *interior*
part (this module) and a *boundary* part (visibility discontinuities, estimated
by edge sampling elsewhere). The interior part is the derivative of the
Monte Carlo contribution with the random numbers held fixed:

.. math::
    \partial L \approx \sum_k \beta_k\, \partial\big(L_{e,k} + L_{r,k}^{dir}\big)
        + L^{ind}_{k}\, \partial \log\!\big(f_k\, J_k\big)

where :math:`\beta_k` is the path throughput up to vertex :math:`k`,
:math:`L^{ind}_k` the radiance the rest of the path carries into vertex
:math:`k`, :math:`f_k` the BSDF times cosine there and :math:`J_k` the
solid-angle-to-area Jacobian towards the next vertex (so that moving
geometry is differentiated in area measure; the incident direction
:math:`\omega_i` at each vertex is likewise re-attached to the previous
vertex's position).

The adjoint follows *Path Replay Backpropagation* (Vicini, Speierer and Jakob,
SIGGRAPH 2021): a primal pass records only the total radiance per path; the
differential pass replays the same random numbers vertex by vertex, and at
each vertex differentiates the local contribution plus the remaining radiance
times the relative derivative of the local BSDF and Jacobian, then subtracts
what it has accounted for. Memory is therefore constant in the path depth.
Sampling is detached, evaluation attached (Zeltner et al., "Monte Carlo
Estimators for Differential Light Transport", SIGGRAPH 2021).
"""

from __future__ import annotations

import drjit as dr
import mitsuba as mi


def power_heuristic(pdf_a, pdf_b):
    """MIS weight of strategy ``a`` against ``b`` (power heuristic, β=2),
    detached and 0 where undefined."""
    a2, b2 = dr.square(pdf_a), dr.square(pdf_b)
    w = a2 / (a2 + b2)
    return dr.detach(dr.select(dr.isfinite(w), w, 0))


def area_jacobian(o: mi.Point3f, p: mi.Point3f, n: mi.Normal3f, active: mi.Bool):
    """|cos θ_p| / ‖p - o‖²: the density change dω = J dA from area around
    ``p`` (normal ``n``) to solid angle at ``o``; 1 where ``active`` is off."""
    d = p - o
    dist2 = dr.squared_norm(d)
    J = dr.abs_dot(n, d) * dr.rsqrt(dist2) / dist2
    return dr.select(active, J, 1)


def trace(mode: dr.ADMode, *args, **kwargs):
    """Trace one path per lane: see :func:`_trace_paths` (same arguments).

    Dr.Jit reports an error raised while it records the loop as
    ``dr.while_loop(): encountered an exception (see above)``; this re-raises
    it with the original message in the text, so that logs that keep only
    the last line (test summaries, CI) still say what failed."""
    try:
        return _trace_paths(mode, *args, **kwargs)
    except RuntimeError as e:
        root = e
        while root.__cause__ is not None or root.__context__ is not None:
            root = root.__cause__ or root.__context__
        if root is e:
            raise
        hint = FOREIGN_GRADIENTS_HINT if "outside of the current dr.isolate_grad" in str(root) \
            else ""
        raise RuntimeError(f"pathgrad interior term ({mode.name}): {hint}"
                           f"{type(root).__name__}: {root}") from e


class CameraRay:
    """Camera rays attached to the sensor's pose and field of view, as the
    path loop sees them: fresh leaves (``ray``), so that the loop never
    crosses AD edges made before it (Dr.Jit: "lies outside of the current
    dr.isolate_grad() scope").

    Forward mode: the sensor's tangent is propagated into the leaves here.
    Reverse mode: after the loop, :meth:`adjoint` is a value whose backward
    propagation carries the leaves' adjoints into the sensor; the caller
    propagates it *with* the boundary terms, in one traversal (the
    sensor's derived values, such as Mitsuba's sample-to-camera transform,
    are shared, and a second traversal would find their edges cleared)."""

    def __init__(self, ray_attached: mi.Ray3f, mode: dr.ADMode):
        self.attached = ray_attached
        # (Ray3f's fields are copies when read: keep the leaves themselves;
        # one per lane, also where the sensor gives one value for all, such
        # as an orthographic camera's direction: the adjoint of a shared
        # leaf came back wrong, measured)
        n = dr.width(ray_attached)
        self.o = dr.detach(ray_attached.o) + dr.zeros(mi.Point3f, n)
        self.d = dr.detach(ray_attached.d) + dr.zeros(mi.Vector3f, n)
        with dr.resume_grad():
            dr.enable_grad(self.o, self.d)
            if mode == dr.ADMode.Forward:
                # (keep every tangent: the boundary terms read the sensor again)
                g_o, g_d = dr.forward_to(ray_attached.o, ray_attached.d,
                                         flags=dr.ADFlag.AllowNoGrad)
                dr.set_grad(self.o, g_o)
                dr.set_grad(self.d, g_d)
            self.ray = mi.Ray3f(ray_attached)
            self.ray.o, self.ray.d = self.o, self.d

    def adjoint(self) -> mi.Float:
        """Σ over lanes of ⟨attached ray, adjoint of its leaf⟩: backward
        from it propagates the loop's adjoints into the sensor."""
        with dr.resume_grad():
            g_o, g_d = dr.grad(self.o), dr.grad(self.d)
            return dr.sum(dr.dot(self.attached.o, g_o) + dr.dot(self.attached.d, g_d))


#: what the "edge ... outside of the current dr.isolate_grad() scope" error
#: of a forward-mode render means (measured; Mitsuba's ``prb`` fails alike)
FOREIGN_GRADIENTS_HINT = (
    "forward mode cannot run while gradient-enabled values that this render does not "
    "differentiate are alive with un-propagated AD edges: another scene loaded in this "
    "process whose parameters have gradients (Dr.Jit's symbolic calls visit every live "
    "shape), or parameters of this scene that are not in `params`. Free the other scene "
    "and its parameters (del them; gc.collect()), disable their gradients "
    "(dr.disable_grad, or params[key] = dr.detach(params[key]); params.update()), put "
    "every gradient-enabled key of this scene into `params`, or use reverse mode. "
    "Dr.Jit's message: ")


_FLAGS = dr.ADFlag.Default | dr.ADFlag.AllowNoGrad


def _camera_ray_at(first: mi.Bool, ray_camera: mi.Ray3f, ray: mi.Ray3f) -> mi.Ray3f:
    """``ray_camera`` where ``first``, else ``ray``."""
    return mi.Ray3f(dr.select(first, ray_camera.o, ray.o), dr.select(first, ray_camera.d, ray.d),
                    ray.maxt, ray.time, ray.wavelengths)


@dr.syntax
def _trace_paths(mode: dr.ADMode,
                 scene: mi.Scene,
                 sampler: mi.Sampler,
                 ray: mi.Ray3f,
                 active: mi.Bool,
                 max_depth: int,
                 rr_depth: int,
                 δL: mi.Spectrum | None = None,
                 L_primal: mi.Spectrum | None = None,
                 pi_first: mi.PreliminaryIntersection3f | None = None,
                 ray_camera: CameraRay | None = None,
                 depth0: mi.UInt32 | None = None):
    """Trace one path per lane.

    ``mode`` is ``dr.ADMode.Primal`` (returns the radiance estimate),
    ``Forward`` (returns its derivative with respect to the scene parameters
    whose gradients are set) or ``Backward`` (propagates the adjoint radiance
    ``δL`` into the scene parameters, returns δL unchanged). The differential
    modes need ``L_primal``, the primal output for the same sampler state.

    ``pi_first`` optionally gives the first intersection of ``ray`` instead
    of tracing it (the boundary estimators start paths on a chosen face).

    ``depth0`` optionally gives the path depth of the first vertex (0: the
    first vertex seen from the camera), per lane: the boundary estimators
    continue paths from a vertex deep in a camera path, and the remaining
    path must end (``max_depth``) and start Russian roulette (``rr_depth``)
    where the camera path would.

    ``ray_camera`` (differential modes): a :class:`CameraRay` of ``ray``,
    when the sensor's pose or field of view carry gradients. The first vertex is
    then re-evaluated along it, so it slides on its surface as the camera
    moves (the film position is held fixed: the derivative in primary
    sample space), and the second vertex's ω_i follows it.

    Returns ``(L or δL, valid)``: ``valid`` is true where the camera ray hit
    a surface (for the alpha channel).
    """
    primal = mode == dr.ADMode.Primal
    ctx = mi.BSDFContext()

    # ----------------------------- loop state -------------------------------
    ray = mi.Ray3f(dr.detach(ray))
    depth = mi.UInt32(0 if depth0 is None else depth0)
    L = mi.Spectrum(0 if primal else L_primal)   # primal: sum; replay: remainder
    δL = mi.Spectrum(δL if δL is not None else 0)
    β = mi.Spectrum(1)                           # throughput
    η = mi.Float(1)                              # relative IOR product (for RR)
    active = mi.Bool(active)
    valid = mi.Bool(False)
    if pi_first is None:
        pi = scene.ray_intersect_preliminary(ray, coherent=True, active=active)
    else:
        pi = pi_first

    # previous vertex (for MIS of emitter hits and the re-attached ω_i)
    ray_prev = mi.Ray3f(ray)
    pi_prev = dr.zeros(mi.PreliminaryIntersection3f)
    si_prev = dr.zeros(mi.SurfaceInteraction3f)
    pdf_prev = mi.Float(1)
    delta_prev = mi.Bool(True)

    # A symbolic loop does not differentiate Python values its body captures
    # (measured: the camera ray's tangent never reached the path), so a
    # moving camera runs the loop evaluated, one kernel per vertex
    loop_mode = "evaluated" if ray_camera is not None else None
    while dr.hint(active, max_iterations=max_depth, mode=loop_mode,
                  label=f"pathgrad interior ({mode.name})"):
        active_next = mi.Bool(active)

        with dr.resume_grad(when=not primal):
            ray_here, ray_before = ray, ray_prev
            if dr.hint(not primal and ray_camera is not None, mode='scalar'):
                # the camera moves: its ray to the first vertex is attached
                ray_here = _camera_ray_at(depth == 0, ray_camera.ray, ray)
                ray_before = _camera_ray_at(depth == 1, ray_camera.ray, ray_prev)
            si = pi.compute_surface_interaction(ray_here, ray_flags=mi.RayFlags.All,
                                                active=active)
            if dr.hint(not primal, mode='scalar'):
                # ω_i follows the previous vertex when that one moves; the
                # current point is held fixed here (its own motion along the
                # ray is already in `si`).
                si_prev_att = pi_prev.compute_surface_interaction(
                    ray_before, ray_flags=mi.RayFlags.Minimal, active=active & (depth > 0))
                p_here = dr.detach(si.p)
                wi_att = si.to_local(dr.normalize(si_prev_att.p - p_here))
                si.wi = dr.replace_grad(si.wi, dr.select(depth > 0, wi_att, si.wi))

        valid |= (depth == 0) & si.is_valid()
        bsdf = si.bsdf(ray)

        # --------------------- emission found by the path --------------------
        ds_hit = mi.DirectionSample3f(scene, si=si, ref=si_prev)
        w_hit = power_heuristic(pdf_prev,
                                scene.pdf_emitter_direction(si_prev, ds_hit, ~delta_prev))
        with dr.resume_grad(when=not primal):
            Le = β * w_hit * ds_hit.emitter.eval(si, active)

        # ---------------------- next-event estimation ------------------------
        active_next &= (depth + 1 < max_depth) & si.is_valid()
        active_em = active_next & mi.has_flag(bsdf.flags(), mi.BSDFFlags.Smooth)
        ds, em_w = scene.sample_emitter_direction(si, sampler.next_2d(), True, active_em)
        active_em &= ds.pdf != 0

        with dr.resume_grad(when=not primal):
            if dr.hint(not primal, mode='scalar'):
                # Re-evaluate the (detached) emitter sample with AD: emitter
                # parameters, the direction to a fixed light point from a moving
                # shading point, and the area Jacobian of that change.
                flags = ds.emitter.flags()
                on_surface = mi.has_flag(flags, mi.EmitterFlags.Surface)
                infinite = mi.has_flag(flags, mi.EmitterFlags.Infinite)
                textured = active_em & on_surface & mi.has_flag(flags, mi.EmitterFlags.SpatiallyVarying)
                # textured area lights: recover attached UVs on the light
                ray_em = si.spawn_ray_to(ds.p)
                ray_em.o = dr.fma(ray_em.d, ray_em.maxt, ray_em.o)
                ray_em.maxt = dr.largest(ray_em.maxt)
                si_em = scene.ray_intersect(ray_em, textured)
                ds_att = mi.DirectionSample3f(scene, si_em, si)
                ds_att = dr.select(textured, ds_att, dr.zeros(mi.DirectionSample3f))
                ds_att.d = dr.select(textured, ds_att.d, dr.normalize(ds.p - si.p))
                ds_att.d = dr.select(infinite, ds.d, ds_att.d)
                ds = dr.replace_grad(ds, ds_att)
                J_em = area_jacobian(si.p, dr.detach(ds.p), dr.detach(ds.n), active_em & on_surface)
                Le_em = scene.eval_emitter_direction(si, ds, active_em)
                inv_pdf = dr.select(ds.pdf != 0, dr.rcp(ds.pdf), 0)
                em_w = dr.replace_grad(em_w, Le_em * dr.detach(inv_pdf)) * dr.relative_grad(J_em)

            wo_em = si.to_local(ds.d)
            f_em, pdf_em = bsdf.eval_pdf(ctx, si, wo_em, active_em)
            w_em = dr.select(ds.delta, 1, power_heuristic(ds.pdf, pdf_em))
            Lr_dir = β * w_em * f_em * em_w

        # ------------------------- BSDF sampling -----------------------------
        bs, bsdf_w = bsdf.sample(ctx, si, sampler.next_1d(), sampler.next_2d(), active_next)
        ray_next = si.spawn_ray(si.to_world(bs.wo))

        # primal: accumulate; replay: L becomes what the rest of the path adds
        L = (L + Le + Lr_dir) if primal else (L - Le - Lr_dir)
        β *= bsdf_w
        η *= bs.eta

        si_prev = dr.detach(si, True)
        pdf_prev = bs.pdf
        delta_prev = mi.has_flag(bs.sampled_type, mi.BSDFFlags.Delta)

        # ------------------------ Russian roulette ---------------------------
        β_max = dr.max(β)
        active_next &= β_max != 0
        q = dr.minimum(β_max * dr.square(η), 0.95)
        rr = depth >= rr_depth
        β[rr] *= dr.rcp(q)
        active_next &= ~rr | (sampler.next_1d() < q)

        pi_next = scene.ray_intersect_preliminary(ray_next, coherent=False,
                                                  active=active_next)

        # ----------------------- differential phase --------------------------
        if dr.hint(not primal, mode='scalar'):
            si_next = pi_next.compute_surface_interaction(
                ray_next, ray_flags=mi.RayFlags.Minimal, active=active_next)
            with dr.resume_grad():
                hit_next = active_next & si_next.is_valid()
                # The next vertex is held fixed: moving this one changes ω_o and
                # the area Jacobian towards it.
                J = area_jacobian(si.p, si_next.p, si_next.n, hit_next)
                wo_att = dr.select(hit_next, dr.normalize(si_next.p - si.p), ray_next.d)
                wo = si.to_local(dr.replace_grad(ray_next.d, wo_att))
                f = bsdf.eval(ctx, si, wo, active_next)
                # L (remaining radiance) is detached: attach it through the
                # relative derivative of the local factors it was weighted by.
                Lr_ind = L * dr.relative_grad(f) * dr.relative_grad(J)
                Lo = Le + Lr_dir + Lr_ind
                # (AllowNoGrad: with only the camera moving, a vertex may
                # contribute nothing that depends on it)
                if dr.hint(mode == dr.ADMode.Backward, mode='scalar'):
                    dr.backward_from(δL * Lo, flags=_FLAGS)
                else:
                    δL += dr.forward_to(Lo, flags=_FLAGS)

        depth[si.is_valid()] += 1
        active = active_next
        pi_prev, ray_prev = pi, ray
        pi, ray = pi_next, ray_next

    return (L if primal else δL), valid
