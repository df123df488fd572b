"""pathgrad: physics-based differentiable path tracing on Mitsuba 3 and Dr.Jit.

Quick start::

    import pathgrad, drjit as dr
    scene = pathgrad.load_scene("scenes/cbox.xml")
    params = pathgrad.parameters(scene, "red.reflectance.value")
    img = pathgrad.render(scene, params, spp=16)
    dr.backward(dr.mean(dr.square(img - target)))
    print(dr.grad(params["red.reflectance.value"]))

Importing the package selects a differentiable Mitsuba variant (see
:func:`set_variant`) and registers the ``pathgrad`` integrator with Mitsuba.
"""

from ._variant import VariantError, set_variant, check_variant

__version__ = "0.1.0"

set_variant()

from .api import (NothingAttachedWarning, ParameterError, gradient_images,  # noqa: E402
                  load_scene, make_integrator, parameters, render)
from .gradcheck import GradcheckReport, gradcheck  # noqa: E402
from .multiview import MultiViewProblem  # noqa: E402
from . import shapes, scenes, imageio_utils, largesteps, poses  # noqa: E402,F401

__all__ = ["render", "gradient_images", "gradcheck", "GradcheckReport", "load_scene", "parameters",
           "make_integrator", "set_variant", "check_variant", "VariantError",
           "ParameterError", "NothingAttachedWarning", "MultiViewProblem", "shapes", "poses"]
