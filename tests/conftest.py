"""Shared fixtures: scenes from ../scenes and small scenes built in code."""
import os

import pytest

import pathgrad  # noqa: F401  (selects the variant first)
from pathgrad.scenes import diffuse, floor_scene, object_scene  # noqa: F401

SCENES = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "scenes")


def scene_path(name: str) -> str:
    return os.path.join(SCENES, name)


EXAMPLES = os.path.join(os.path.dirname(SCENES), "examples")


def load_example(name: str):
    """Import ``examples/<name>.py`` as a module (the examples are scripts,
    not a package)."""
    import importlib.util
    spec = importlib.util.spec_from_file_location(f"example_{name}",
                                                  os.path.join(EXAMPLES, name + ".py"))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def run_example_fast(name: str, tmp_path, *flags, files=()):
    """Run ``examples/<name>.py --fast`` into ``tmp_path``; check that it wrote
    the outputs every example writes plus ``files``, and that results.json
    matches what main() returned. Returns the results."""
    import json
    res = load_example(name).main(["--fast", "--quiet", "--out", str(tmp_path), *flags])
    for f in ("comparison.png", "loss.png", "results.json", *files):
        path = tmp_path / f
        assert path.is_file() and path.stat().st_size > 0, f"{name} did not write {f}"
    assert json.loads((tmp_path / "results.json").read_text())["iters"] == res["iters"]
    print({k: v for k, v in res.items() if k != "args"})
    return res


@pytest.fixture(scope="session")
def cbox_path():
    return scene_path("cbox.xml")


def check_term(scene, key, direction, eps, without: dict, *, spp=32, spp_fd=512, seeds=4,
               tol=0.05, **kw):
    """gradcheck with every term (must pass), then with the term switched off
    by ``without`` (e.g. ``{'boundary': False}``) against the same finite
    differences (must fail in both modes). Also asserts the check has power:
    low noise, and a zero or sign-flipped gradient would fail."""
    full = pathgrad.gradcheck(scene, key, direction, eps=eps, spp=spp, spp_fd=spp_fd,
                              seeds=seeds, tol=tol, **kw)
    print(full)
    assert full.passed, str(full)
    assert full.noise < 0.35, f"too noisy to be meaningful:\n{full}"
    assert not full.with_ad_scaled(0).passed and not full.with_ad_scaled(-1).passed
    if without:
        partial = pathgrad.gradcheck(scene, key, direction, spp=spp, seeds=seeds, tol=tol,
                                     reference=full, **without, **kw)
        print(f"without {without}:", partial, sep="\n")
        assert not partial.forward_ok and not partial.reverse_ok, \
            f"the test cannot tell the term {without} is missing"
    return full


@pytest.fixture(autouse=True)
def _collect_after_each_test():
    """Free each test's scenes before the next test starts. A test that
    expects an exception from inside a Dr.Jit custom operation (mi.render's
    checks) keeps its frames, hence its scene, alive in a reference cycle;
    while that scene lives, later forward-mode renders in the process fail
    with Dr.Jit's "edge ... lies outside of the current dr.isolate_grad()
    scope" (measured; it goes away once the scene is freed)."""
    yield
    import gc
    gc.collect()
