"""The ``pathgrad`` integrator: Mitsuba's differentiable-integrator protocol
(``render``, ``render_forward``, ``render_backward``) on top of our estimators.

Registered with Mitsuba as ``pathgrad``::

    <integrator type="pathgrad">
        <integer name="max_depth" value="6"/>
    </integrator>

or ``{'type': 'pathgrad', 'max_depth': 6}`` in a scene dictionary.

Properties
----------
max_depth : int, default 6
    Longest path, in vertices counted from the camera (1: emitters seen
    directly; 2: direct illumination; -1: unbounded).
rr_depth : int, default 5
    Depth from which Russian roulette may stop paths.
boundary : bool, default true
    Add the boundary (visibility) term for meshes whose vertex positions are
    differentiable (see :mod:`pathgrad.boundary.primary`).
shadow : bool, default true
    Within the boundary term, include shadow edges of direct illumination
    (see :mod:`pathgrad.boundary.shadow`).
boundary_spp : float, default 0
    Boundary samples per pixel of the film (the total is this times the
    number of pixels, spread over the silhouettes in view). 0 means: the
    same as the spp of the differential pass.
"""

from __future__ import annotations

import drjit as dr
import mitsuba as mi

from . import interior
from .boundary import primary, shadow, shadow_delta
from .boundary.camera import PinholeCamera
from .boundary.edges import EdgeArrays

NAME = "pathgrad"


# --------------------------------------------------------------------------
# Film helpers: camera-ray generation and splatting (shared by all phases)
# --------------------------------------------------------------------------

def _prepare_sampler(sensor: mi.Sensor, seed: int, spp: int) -> tuple[mi.Sampler, int]:
    """Clone the sensor's sampler, set its sample count and seed it for one
    wavefront covering the film (plus its border when ``sample_border``)."""
    film = sensor.film()
    sampler = sensor.sampler().clone()
    if spp:
        sampler.set_sample_count(spp)
    spp = sampler.sample_count()
    sampler.set_samples_per_wavefront(spp)
    size = film.crop_size()
    if film.sample_border():
        size += 2 * film.rfilter().border_size()
    n = dr.prod(size) * spp
    if n > 2**32:
        raise ValueError(f"{n} samples exceed 2^32: use fewer samples per pixel "
                         "or render in several passes with different seeds.")
    sampler.seed(seed, n)
    film.prepare([])
    return sampler, spp


def _camera_rays(sensor: mi.Sensor, sampler: mi.Sampler):
    """One camera ray per sample, pixel by pixel. Returns ``(ray, weight,
    splat_pos)`` with ``splat_pos`` in film pixel coordinates."""
    film = sensor.film()
    rfilter = film.rfilter()
    size = film.crop_size()
    border = rfilter.border_size() if film.sample_border() else 0
    size_b = size + 2 * border
    spp = sampler.sample_count()

    idx = dr.arange(mi.UInt32, dr.prod(size_b) * spp) // spp
    pixel = mi.Vector2i(mi.Int32(idx % size_b[0]), mi.Int32(idx // size_b[0]))
    pixel += mi.Vector2i(film.crop_offset()) - border
    pos = mi.Vector2f(pixel) + sampler.next_2d()

    # film pixel coordinates -> [0, 1]^2 over the crop window (the sensor
    # maps that square onto the crop window)
    uv = (pos - mi.ScalarVector2f(film.crop_offset())) / mi.ScalarVector2f(size)

    aperture = sampler.next_2d() if sensor.needs_aperture_sample() else mi.Vector2f(0.5)
    time = sensor.shutter_open()
    if sensor.shutter_open_time() > 0:
        time += sampler.next_1d() * sensor.shutter_open_time()
    wavelength = sampler.next_1d() if mi.is_spectral else 0.0
    ray, weight = sensor.sample_ray(time, wavelength, uv, aperture)

    # A box filter splats to the pixel it was drawn in (no leakage from
    # rounding at pixel edges); other filters splat at the exact position.
    splat_pos = mi.Vector2f(pixel) if rfilter.is_box_filter() else pos
    return ray, weight, splat_pos


def _splat(film: mi.Film, pos, value: mi.Spectrum, alpha, weight=1.0, coalesce=True):
    """Splat per-sample RGB values into a fresh block and develop the image."""
    block = film.create_block()
    block.set_coalesce(block.coalesce() and coalesce)
    rgb = mi.Color3f(value.x) if mi.is_monochromatic else value
    if mi.is_spectral:
        raise NotImplementedError("pathgrad supports RGB and mono variants")
    channels = [rgb.x, rgb.y, rgb.z]
    if mi.has_flag(film.flags(), mi.FilmFlags.Alpha):
        channels.append(mi.Float(alpha))
    channels.append(mi.Float(weight))
    block.put(pos, channels)
    film.put_block(block)
    return film.develop()


# --------------------------------------------------------------------------
# The integrator
# --------------------------------------------------------------------------

def check_properties(max_depth, rr_depth, boundary_spp) -> None:
    """Raise ValueError (saying what is allowed) for bad integrator settings."""
    if max_depth < 0 and max_depth != -1:
        raise ValueError(f"pathgrad: max_depth must be -1 (unbounded) or >= 0, got {max_depth}")
    if rr_depth <= 0:
        raise ValueError(f"pathgrad: rr_depth must be > 0, got {rr_depth}")
    if boundary_spp < 0:
        raise ValueError(f"pathgrad: boundary_spp must be >= 0, got {boundary_spp}")


class _PathgradMixin:
    """Interior term by path replay (see :mod:`pathgrad.interior`).

    The concrete class derives from the active variant's
    ``mi.CppADIntegrator``; get it with :func:`integrator_class`.
    """

    def __init__(self, props: mi.Properties = None):
        props = props if props is not None else mi.Properties()
        mi.CppADIntegrator.__init__(self, props)
        max_depth = props.get("max_depth", 6)
        self.rr_depth = int(props.get("rr_depth", 5))
        self.boundary_spp = float(props.get("boundary_spp", 0.0))
        check_properties(max_depth, self.rr_depth, self.boundary_spp)
        self.max_depth = 0xFFFFFFFF if max_depth == -1 else int(max_depth)
        self.boundary = bool(props.get("boundary", True))
        self.shadow = bool(props.get("shadow", True))

    def to_string(self):
        return (f"PathgradIntegrator[max_depth={self.max_depth}, rr_depth={self.rr_depth}, "
                f"boundary={self.boundary}, shadow={self.shadow}, "
                f"boundary_spp={self.boundary_spp}]")

    def aov_names(self):
        return []

    # ------------------------------------------------------------- helpers
    def _trace(self, mode, scene, sampler, ray, δL=None, L_primal=None):
        return interior.trace(mode, scene, sampler, ray, mi.Bool(True),
                              self.max_depth, self.rr_depth, δL=δL, L_primal=L_primal)

    @staticmethod
    def _sensor(scene, sensor):
        if isinstance(sensor, int):
            sensors = scene.sensors()
            if not 0 <= sensor < len(sensors):
                raise IndexError(f"sensor index {sensor} out of range: the scene has "
                                 f"{len(sensors)} sensor(s)")
            return sensors[sensor]
        return sensor

    # ------------------------------------------------------------- protocol
    def render(self, scene: mi.Scene, sensor=0, seed: int = 0, spp: int = 0,
               develop: bool = True, evaluate: bool = True) -> mi.TensorXf:
        """Primal image (no derivatives tracked)."""
        if not develop:
            raise ValueError("pathgrad: develop=False is not supported")
        sensor = self._sensor(scene, sensor)
        film = sensor.film()
        with dr.suspend_grad():
            sampler, spp = _prepare_sampler(sensor, seed, spp)
            ray, weight, pos = _camera_rays(sensor, sampler)
            L, valid = self._trace(dr.ADMode.Primal, scene, sampler, ray)
            img = _splat(film, pos, L * weight, dr.select(valid, 1.0, 0.0),
                         coalesce=spp >= 4)
            if evaluate:
                dr.eval(img)
            return img

    def _boundary_image(self, scene, sensor, seed, spp):
        """Zero-valued image whose derivative is the boundary term, or None."""
        if not self.boundary:
            return None
        bspp = self.boundary_spp or spp
        with dr.resume_grad():   # grad_enabled() reads False while suspended
            moving = primary.differentiable_meshes(scene)
            lights_move = self.shadow and any(
                dr.grad_enabled(shadow_delta._light_position(e, 1))
                for e in shadow_delta.delta_lights(scene))
            if not moving and not lights_move:
                return None
            # one edge set (all meshes) and one camera, shared by the estimators
            meshes = [m for m in scene.shapes() if isinstance(m, mi.Mesh)]
            edges = EdgeArrays(meshes if self.shadow else moving, moving)
            camera = PinholeCamera(sensor)
            terms = [primary.estimate(scene, sensor, seed, bspp, self.max_depth, self.rr_depth,
                                      edges, camera)]
            if self.shadow:
                terms.append(shadow.estimate(scene, sensor, seed, max(int(round(bspp)), 1), edges))
                terms.append(shadow_delta.estimate(scene, sensor, seed, bspp, self.max_depth,
                                                   self.rr_depth, edges, camera))
            terms = [t for t in terms if t is not None]
            if not terms:
                return None
            img = terms[0]
            for t in terms[1:]:
                img = img + t      # (inside resume_grad: a suspended sum would detach)
        return img

    def render_forward(self, scene: mi.Scene, params=None, sensor=0,
                       seed: int = 0, spp: int = 0, split: bool = False):
        """Gradient image: derivative of the image along the gradients set on
        the scene parameters (``dr.set_grad``). With ``split=True`` returns
        ``{'interior': ..., 'boundary': ...}`` instead of their sum."""
        sensor = self._sensor(scene, sensor)
        film = sensor.film()
        with dr.suspend_grad():
            sampler, spp = _prepare_sampler(sensor, seed, spp)
            ray, weight, pos = _camera_rays(sensor, sampler)
            L, _ = self._trace(dr.ADMode.Primal, scene, sampler.clone(), ray)
            δL, _ = self._trace(dr.ADMode.Forward, scene, sampler, ray, L_primal=L)
            img = _splat(film, pos, δL * weight, 0.0, coalesce=spp >= 4)
            dr.eval(img)
            bimg = self._boundary_image(scene, sensor, seed, spp)
            if bimg is not None:
                with dr.resume_grad():
                    bimg = dr.forward_to(bimg, flags=dr.ADFlag.Default | dr.ADFlag.AllowNoGrad)
                dr.eval(bimg)
            else:
                bimg = dr.zeros(mi.TensorXf, img.shape)
            if split:
                return {"interior": img, "boundary": bimg}
            return img + bimg

    def render_backward(self, scene: mi.Scene, params, grad_in: mi.TensorXf,
                        sensor=0, seed: int = 0, spp: int = 0) -> None:
        """Propagate the image adjoint ``grad_in`` into the scene parameters
        that have gradients enabled (accumulated with ``dr.grad``)."""
        sensor = self._sensor(scene, sensor)
        film = sensor.film()
        with dr.suspend_grad():
            sampler, spp = _prepare_sampler(sensor, seed, spp)
            ray, weight, pos = _camera_rays(sensor, sampler)
            δL = self._sample_adjoint(film, pos, weight, grad_in, spp)
            L, _ = self._trace(dr.ADMode.Primal, scene, sampler.clone(), ray)
            self._trace(dr.ADMode.Backward, scene, sampler, ray, δL=δL, L_primal=L)
            dr.eval()
            bimg = self._boundary_image(scene, sensor, seed, spp)
            if bimg is not None:
                with dr.resume_grad():
                    dr.backward_from(bimg * grad_in,
                                     flags=dr.ADFlag.Default | dr.ADFlag.AllowNoGrad)
                dr.eval()

    @staticmethod
    def _sample_adjoint(film, pos, weight, grad_in, spp):
        """Adjoint radiance per sample: the transpose of splatting and the
        weight normalisation of ``develop``, applied to ``grad_in``."""
        with dr.resume_grad():
            one = dr.ones(mi.Spectrum, dr.width(pos))
            dr.enable_grad(one)
            img = _splat(film, pos, one * weight, 0.0, coalesce=spp >= 4)
            dr.set_grad(img, grad_in)
            dr.enqueue(dr.ADMode.Backward, img)
            dr.traverse(dr.ADMode.Backward)
            δL = dr.grad(one)
        film.clear()
        return δL


_classes: dict[str, type] = {}


def integrator_class() -> type:
    """The integrator class for the active Mitsuba variant."""
    variant = mi.variant()
    if variant not in _classes:
        # nanobind classes take a single base: copy the methods over.
        ns = {k: v for k, v in vars(_PathgradMixin).items()
              if k not in ("__dict__", "__weakref__")}
        _classes[variant] = type("PathgradIntegrator", (mi.CppADIntegrator,), ns)
    return _classes[variant]


def register() -> None:
    """Register ``pathgrad`` with Mitsuba for the active variant (idempotent)."""
    variant = mi.variant()
    if variant in _classes:
        return
    cls = integrator_class()
    mi.register_integrator(NAME, lambda props: cls(props))
