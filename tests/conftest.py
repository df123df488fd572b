"""Shared fixtures: scenes from ../scenes and small scenes built in code."""
import os

import pytest

import pathgrad  # noqa: F401  (selects the variant first)
from pathgrad.scenes import diffuse, floor_scene, object_scene  # noqa: F401

SCENES = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "scenes")


def scene_path(name: str) -> str:
    return os.path.join(SCENES, name)


@pytest.fixture(scope="session")
def cbox_path():
    return scene_path("cbox.xml")
