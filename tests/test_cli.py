"""The command line (``python -m pathgrad``): render, gradcheck, help and bad input.

Most tests call ``main([...])`` in-process (no interpreter start-up, shared
JIT cache); one runs ``python -m pathgrad --help`` as a subprocess."""
import os
import subprocess
import sys

import imageio.v3 as iio
import mitsuba as mi
import numpy as np
import pytest

import pathgrad
from pathgrad.__main__ import _join_negative_direction, build_parser, main
from pathgrad.passes import render_passes
from conftest import scene_path

CBOX = scene_path("cbox.xml")
RES = 16


def read_exr(path) -> np.ndarray:
    return np.array(mi.Bitmap(str(path)), dtype=np.float32)


def direct_render(spp, seed, res=RES, **kw):
    scene = pathgrad.load_scene(CBOX, res=res)
    return np.array(pathgrad.render(scene, spp=spp, seed=seed, **kw), dtype=np.float64)


# ---------------------------------------------------------------- render

def test_render_exr_matches_direct_render(tmp_path, capsys):
    out = tmp_path / "img.exr"
    assert main(["render", CBOX, "-o", str(out), "--spp", "8", "--seed", "3",
                 "--res", str(RES), "-q"]) == 0
    img = read_exr(out)
    assert img.shape == (RES, RES, 3)
    assert np.isfinite(img).all() and img.mean() > 0.05
    # one pass (8 <= 64 spp): the same seed gives the same image
    np.testing.assert_allclose(img, direct_render(8, 3), rtol=1e-5, atol=1e-6)
    preview = tmp_path / "img.png"
    assert iio.imread(preview).shape == (RES, RES, 3)
    text = capsys.readouterr().out
    assert str(out) in text and " s " in text and "8 spp" in text


def test_render_passes_are_weighted_average(tmp_path, capsys):
    # 12 spp in passes of at most 5: 4 + 4 + 4, each with its own seed
    plan = render_passes(12, 7, 5)
    assert [n for n, _ in plan] == [4, 4, 4] and plan[0][1] == 7
    assert len({s for _, s in plan}) == 3
    out = tmp_path / "img.exr"
    assert main(["render", CBOX, "-o", str(out), "--spp", "12", "--seed", "7",
                 "--pass-spp", "5", "--res", str(RES), "--max-depth", "3"]) == 0  # with bar
    expected = sum(n * direct_render(n, s, max_depth=3) for n, s in plan) / 12
    np.testing.assert_allclose(read_exr(out), expected, rtol=1e-5, atol=1e-6)
    assert "3 passes" in capsys.readouterr().out


@pytest.mark.parametrize("spp,pass_spp", [(1, 64), (64, 64), (65, 64), (200, 64), (7, 2)])
def test_render_passes_split(spp, pass_spp):
    plan = render_passes(spp, 0, pass_spp)
    counts = [n for n, _ in plan]
    assert sum(counts) == spp and max(counts) <= pass_spp
    assert len(plan) == -(-spp // pass_spp) and max(counts) - min(counts) <= 1


def test_render_png_output(tmp_path):
    out = tmp_path / "sub" / "img.png"
    assert main(["render", CBOX, "-o", str(out), "--spp", "4", "-D", f"res={RES}", "-q"]) == 0
    png = iio.imread(out)
    assert png.shape == (RES, RES, 3) and png.dtype == np.uint8 and png.max() > 0
    assert not (tmp_path / "sub" / "img.exr").exists()


# ---------------------------------------------------------------- gradcheck

def test_gradcheck_passes_and_writes_images(tmp_path, capsys):
    folder = tmp_path / "gc"
    code = main(["gradcheck", CBOX, "--param", "red.reflectance.value", "--res", str(RES),
                 "--spp", "16", "--seeds", "3", "--out", str(folder)])
    text = capsys.readouterr().out
    assert code == 0, text
    assert "gradcheck 'red.reflectance.value'" in text and "PASSED" in text
    fd = read_exr(folder / "red.reflectance.value.fd.exr")
    ad = read_exr(folder / "red.reflectance.value.ad.exr")
    assert fd.shape == ad.shape == (RES, RES, 3)
    assert np.isfinite(fd).all() and np.isfinite(ad).all()
    # the red wall brightens with its own albedo: both images mostly positive
    assert fd.sum() > 0 and ad.sum() > 0
    for name in ("fd", "ad"):
        assert iio.imread(folder / f"red.reflectance.value.{name}.png").shape == (RES, RES, 3)


def test_gradcheck_failure_exits_1(tmp_path, monkeypatch, capsys):
    real = pathgrad.gradcheck
    # a sign-flipped gradient must fail the check and the exit status
    monkeypatch.setattr(pathgrad, "gradcheck",
                        lambda *a, **k: real(*a, **k).with_ad_scaled(-1))
    code = main(["gradcheck", CBOX, "-p", "red.reflectance.value", "--res", "8",
                 "--spp", "8", "--seeds", "2", "--direction", "-1,-1,-1", "-q",
                 "--out", str(tmp_path)])
    assert code == 1
    assert "FAILED" in capsys.readouterr().out


def test_gradcheck_progress_callable_keeps_numerics():
    scene = pathgrad.load_scene(CBOX, res=8)
    kw = dict(spp=4, spp_fd=8, seeds=2)
    stages = []
    with_cb = pathgrad.gradcheck(scene, "red.reflectance.value", progress=stages.append, **kw)
    silent = pathgrad.gradcheck(scene, "red.reflectance.value", **kw)
    # one call per render: 2 per FD image at eps and 2*eps, 1 per AD pass
    assert stages == ["fd"] * 4 + ["fd-2eps"] * 4 + ["forward"] * 2 + ["reverse"] * 2
    np.testing.assert_array_equal(with_cb.fd_per_seed, silent.fd_per_seed)
    np.testing.assert_allclose(with_cb.forward_per_seed, silent.forward_per_seed,
                               rtol=1e-5, atol=1e-7)


# ---------------------------------------------------------------- bad input

def test_unknown_key_lists_close_matches(tmp_path, capsys):
    code = main(["gradcheck", CBOX, "--param", "red.reflectance", "--res", "8",
                 "--out", str(tmp_path)])
    err = capsys.readouterr().err
    assert code == 2
    assert "Unknown scene parameter 'red.reflectance'" in err
    assert "Did you mean" in err and "red.reflectance.value" in err
    assert "Traceback" not in err
    assert not any(tmp_path.iterdir())


@pytest.mark.parametrize("command", ["render", "gradcheck"])
def test_missing_scene_file(tmp_path, capsys, command):
    extra = ["-p", "red.reflectance.value"] if command == "gradcheck" else []
    code = main([command, str(tmp_path / "nope.xml"), *extra])
    err = capsys.readouterr().err
    assert code == 2
    assert "nope.xml" in err and "does not exist" in err and "Traceback" not in err


@pytest.mark.parametrize("args,message", [
    (["render", CBOX, "--spp", "0"], "must be a positive integer"),
    (["render", CBOX, "--spp", "-4"], "must be a positive integer"),
    (["gradcheck", CBOX, "-p", "red.reflectance.value", "--spp", "0"],
     "must be a positive integer"),
    (["gradcheck", CBOX, "-p", "red.reflectance.value", "--seeds", "1"], "at least 2 seeds"),
    (["render", CBOX, "-D", "nosuch=3", "--res", "8"], "has no parameter 'nosuch'"),
    (["render", CBOX, "-D", "res"], "NAME=VALUE"),
    (["render", CBOX, "-o", "img.jpg"], ".exr"),
    (["render", CBOX, "--res", "8", "--sensor", "2"], "out of range"),
    (["gradcheck", CBOX, "-p", "red.reflectance.value", "--res", "8", "--direction", "1,2"],
     "direction has 2 entries"),
])
def test_bad_input_exits_2(tmp_path, capsys, monkeypatch, args, message):
    monkeypatch.chdir(tmp_path)
    assert main(args) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def test_negative_direction_is_a_value():
    assert _join_negative_direction(["--direction", "-1,0,0", "-q"]) == \
        ["--direction=-1,0,0", "-q"]
    args = build_parser().parse_args(
        _join_negative_direction(["gradcheck", "s.xml", "-p", "k", "--direction", "-1,.5,0"]))
    assert args.direction == [-1.0, 0.5, 0.0]


# ---------------------------------------------------------------- help

@pytest.mark.parametrize("command,flags", [
    ([], ["render", "gradcheck"]),
    (["render"], ["--spp", "--seed", "--res", "-D", "--max-depth", "--sensor", "--pass-spp",
                  "--output", "samples per pixel", "default"]),
    (["gradcheck"], ["--param", "--eps", "--spp", "--spp-fd", "--seeds", "--direction",
                     "--tol", "--out", "-D", "--res", "default"]),
])
def test_help(capsys, command, flags):
    assert main([*command, "--help"]) == 0
    text = capsys.readouterr().out
    for flag in flags:
        assert flag in text


def test_python_m_help_subprocess():
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    proc = subprocess.run([sys.executable, "-m", "pathgrad", "--help"], capture_output=True,
                          text=True, timeout=120, cwd=root)
    assert proc.returncode == 0, proc.stderr
    assert "render" in proc.stdout and "gradcheck" in proc.stdout
    assert proc.stdout.startswith("usage: pathgrad")
