"""What moves in a render, decided once per render for every boundary
estimator: the meshes whose vertex positions carry gradients and the
point-like lights whose position does. It also hands out *attached*
positions (light positions, surface points), the values whose derivative is
the motion that a boundary term turns into a gradient.

Everything here is host-side bookkeeping of which variables carry
gradients (``dr.grad_enabled``); nothing waits for the device.

Not yet covered (later estimators): the sensor's pose (Mitsuba marks
``to_world`` of sensors non-differentiable) and analytic shapes' transforms;
camera rays are therefore detached everywhere.
"""

from __future__ import annotations

import drjit as dr
import mitsuba as mi


def delta_lights(scene: mi.Scene) -> list:
    """Point-like emitters with a position (point, spot)."""
    return [e for e in scene.emitters()
            if int(e.flags()) & int(mi.EmitterFlags.DeltaPosition)]


def light_position(emitter: mi.Emitter, n: int) -> mi.Point3f:
    """World position of a point-like emitter on ``n`` lanes, attached to
    the emitter's parameters."""
    it = dr.zeros(mi.Interaction3f, n)
    ds, _ = emitter.sample_direction(it, dr.zeros(mi.Point2f, n), mi.Bool(True))
    return ds.p


def surface_point(pi: mi.PreliminaryIntersection3f, ray: mi.Ray3f, active=True) -> mi.Point3f:
    """The point of ``pi`` recomputed with AD attached to its shape: on a
    moving mesh it follows the mesh while staying on ``ray`` (the ray's own
    origin and direction are attached if ``ray`` is)."""
    return pi.compute_surface_interaction(ray, mi.RayFlags.All, active).p


class Motion:
    """The moving parts of ``scene`` for this render.

    ``meshes``: meshes whose vertex positions carry gradients;
    ``lights``: the scene's point-like lights; ``moving_lights``: those whose
    position carries gradients."""

    def __init__(self, scene: mi.Scene):
        with dr.resume_grad():   # grad_enabled() reads False while suspended
            self.meshes = [s for s in scene.shapes() if isinstance(s, mi.Mesh)
                           and dr.grad_enabled(s.vertex_positions_buffer())]
            self.lights = delta_lights(scene)
            self.moving_lights = [e for e in self.lights
                                  if dr.grad_enabled(light_position(e, 1))]

    @property
    def any(self) -> bool:
        return bool(self.meshes or self.moving_lights)

    def mesh_moves(self, mesh: mi.Mesh) -> bool:
        return any(m is mesh for m in self.meshes)

    def light_moves(self, emitter: mi.Emitter) -> bool:
        return any(e is emitter for e in self.moving_lights)

    def shape_moves(self, shape: mi.ShapePtr) -> mi.Bool:
        """Per lane: whether the shape ``shape`` (e.g. ``si.shape``) moves."""
        out = mi.Bool(False)
        for m in self.meshes:
            out |= shape == mi.ShapePtr(m)
        return out
