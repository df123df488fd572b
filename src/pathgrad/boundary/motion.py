"""What moves in a render, decided once per render for every boundary
estimator: the meshes whose vertex positions carry gradients, the
point-like lights whose position does, and the camera (the sensor's
``to_world`` or ``x_fov``). It also hands out *attached* positions (light
positions, surface points), the values whose derivative is the motion that
a boundary term turns into a gradient.

Motion is relative to the camera: when the camera moves, the image of every
mesh moves, and so does the surface point seen at a fixed film position; so
every mesh counts as moving (:attr:`Motion.meshes`) and every shape moves
under the camera's samples (:meth:`Motion.shape_moves`). The estimators
then need nothing else: they re-project their samples with the attached
camera (:mod:`pathgrad.boundary.camera`), and camera rays are attached to
the pose by Mitsuba's sensors.

Everything here is host-side bookkeeping of which variables carry
gradients (``dr.grad_enabled``); nothing waits for the device.
"""

from __future__ import annotations

import drjit as dr
import mitsuba as mi


def delta_lights(scene: mi.Scene) -> list:
    """Emitters whose light comes from one point (point, spot) or one
    direction (directional): they cast hard shadows."""
    return [e for e in scene.emitters()
            if int(e.flags()) & int(mi.EmitterFlags.DeltaPosition | mi.EmitterFlags.DeltaDirection)]


def is_directional(emitter: mi.Emitter) -> bool:
    """A delta-direction emitter (``directional``): light from one direction."""
    return bool(int(emitter.flags()) & int(mi.EmitterFlags.DeltaDirection))


def light_direction(emitter: mi.Emitter, n: int) -> mi.Vector3f:
    """Unit direction from the scene towards a directional emitter on ``n``
    lanes, attached to the emitter's parameters."""
    it = dr.zeros(mi.Interaction3f, n)
    ds, _ = emitter.sample_direction(it, dr.zeros(mi.Point2f, n), mi.Bool(True))
    return ds.d


def light_moves_attached(emitter: mi.Emitter) -> bool:
    """Whether a delta light's position (or direction) carries gradients."""
    return dr.grad_enabled(light_direction(emitter, 1) if is_directional(emitter)
                           else light_position(emitter, 1))


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


#: Mitsuba's analytic shapes whose outlines the boundary term samples
#: (3.9.1's ``rectangle`` and ``cube`` are meshes: their vertex positions
#: follow ``to_world``, and the mesh estimators see them move)
ANALYTIC_KINDS = {"Sphere": "sphere", "Disk": "disk"}


def analytic_kind(shape: mi.Shape) -> str | None:
    """'sphere', 'disk', or None for other shapes (meshes, ...)."""
    if isinstance(shape, mi.Mesh):
        return None
    return ANALYTIC_KINDS.get(shape.class_name())


def shape_transform(shape: mi.Shape):
    """The ``to_world`` of an analytic shape as last written by
    ``params.update()`` (attached if it was written attached)."""
    return mi.traverse(shape)["to_world"]


def camera_moves(sensor: mi.Sensor | None) -> bool:
    """Whether the sensor's pose or field of view carries gradients."""
    if sensor is None:
        return False
    with dr.resume_grad():
        if dr.grad_enabled(sensor.world_transform().matrix):
            return True
        p = mi.traverse(sensor)
        return "x_fov" in p and dr.is_diff_v(p["x_fov"]) and dr.grad_enabled(p["x_fov"])


class Motion:
    """The moving parts of ``scene`` for a render from ``sensor``.

    ``meshes``: meshes that move relative to the camera (those whose vertex
    positions carry gradients; all of them when the camera moves);
    ``analytic``: Mitsuba's analytic shapes (sphere, disk) whose
    ``to_world`` carries gradients (all of them when the camera moves);
    ``lights``: the scene's delta lights (point, spot, directional);
    ``moving_lights``: those whose position (direction) carries gradients; ``camera``: the sensor's pose or field of
    view carries gradients."""

    def __init__(self, scene: mi.Scene, sensor: mi.Sensor | None = None):
        with dr.resume_grad():   # grad_enabled() reads False while suspended
            self.camera = camera_moves(sensor)
            self.meshes = [s for s in scene.shapes() if isinstance(s, mi.Mesh)
                           and (self.camera or dr.grad_enabled(s.vertex_positions_buffer()))]
            self.analytic = [s for s in scene.shapes() if analytic_kind(s) and (
                self.camera or dr.grad_enabled(shape_transform(s).matrix))]
            self.lights = delta_lights(scene)
            self.moving_lights = [e for e in self.lights if light_moves_attached(e)]

    @property
    def any(self) -> bool:
        return bool(self.meshes or self.analytic or self.moving_lights or self.camera)

    def mesh_moves(self, mesh: mi.Mesh) -> bool:
        return any(m is mesh for m in self.meshes)

    def light_moves(self, emitter: mi.Emitter) -> bool:
        return any(e is emitter for e in self.moving_lights)

    def shape_moves(self, shape: mi.ShapePtr) -> mi.Bool:
        """Per lane: whether the shape ``shape`` (e.g. ``si.shape``) moves
        relative to the camera (every shape does when the camera moves)."""
        out = mi.Bool(self.camera)
        for m in self.meshes + self.analytic:
            out |= shape == mi.ShapePtr(m)
        return out
