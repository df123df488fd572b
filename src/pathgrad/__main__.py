"""Command line: ``python -m pathgrad render|gradcheck ...`` (or ``pathgrad ...``).

    pathgrad render scenes/cbox.xml -o out/cbox.exr --spp 256 --res 128
    pathgrad gradcheck scenes/cbox.xml --param red.reflectance.value --res 32

``render`` writes an image (EXR or PNG); ``gradcheck`` compares pathgrad's
forward- and reverse-mode gradients with finite differences, writes both
gradient images and exits with status 0 if they agree, 1 if not. Bad input
(missing file, unknown parameter, ...) prints a message and exits with 2.
See ``docs/cli.md``.
"""

from __future__ import annotations

import argparse
import math
import os
import re
import sys
import textwrap
import time

PROG = "pathgrad"
EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2
MAX_SEED = 2**32 - 1

__all__ = ["main"]


class CLIError(Exception):
    """Bad input: printed as ``pathgrad <command>: error: <message>``, exit 2."""


# --------------------------------------------------------------------------
# Argument types (argparse turns their ValueError/ArgumentTypeError into a
# usage message and exit status 2)
# --------------------------------------------------------------------------

def _number(parse, valid, what: str):
    """An argparse type: ``parse(text)`` must succeed and ``valid(value)`` hold,
    else the message says ``what`` was expected."""
    def convert(text: str):
        try:
            v = parse(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}") from None
        if not valid(v):
            raise argparse.ArgumentTypeError(f"must be {what}, got {text}")
        return v
    return convert


_positive_int = _number(int, lambda v: v > 0, "a positive integer")
_non_negative_int = _number(int, lambda v: v >= 0, "an integer >= 0")
_max_depth = _number(int, lambda v: v >= 1 or v == -1, "an integer >= 1 (or -1 for unlimited)")
_seed = _number(lambda t: int(t, 0), lambda v: 0 <= v <= MAX_SEED,
                "an integer seed between 0 and 2^32-1")
_positive_float = _number(float, lambda v: v > 0 and math.isfinite(v), "a positive number")
_non_negative_float = _number(float, lambda v: v >= 0 and math.isfinite(v), "a number >= 0")
_seeds_count = _number(int, lambda v: v >= 2,
                       "at least 2 seeds (their spread gives the noise level)")


def _float_list(text: str) -> list[float]:
    parts = [p.strip() for p in text.split(",")]
    try:
        values = [float(p) for p in parts]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected comma-separated numbers such as '1,0,0', got {text!r}") from None
    if not all(math.isfinite(v) for v in values):
        raise argparse.ArgumentTypeError(f"direction must be finite, got {text!r}")
    return values


def _define(text: str) -> tuple[str, str]:
    name, sep, value = text.partition("=")
    name = name.strip()
    if not sep or not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name):
        raise argparse.ArgumentTypeError(
            f"expected NAME=VALUE (an XML default parameter, e.g. -D res=64), got {text!r}")
    return name, value


# --------------------------------------------------------------------------
# Parser
# --------------------------------------------------------------------------

class _Formatter(argparse.RawDescriptionHelpFormatter):
    """Wraps the description to the terminal; keeps the epilog's examples as written."""

    def __init__(self, prog):
        super().__init__(prog, max_help_position=30)

    def _fill_text(self, text, width, indent):
        if "\n" in text:  # epilog: pre-formatted
            return super()._fill_text(text, width, indent)
        return textwrap.fill(text, width, initial_indent=indent, subsequent_indent=indent)


def _add_scene_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("scene", metavar="SCENE.xml", help="Mitsuba 3 XML scene file")
    p.add_argument("-D", dest="defines", metavar="NAME=VALUE", type=_define, action="append",
                   default=[],
                   help="set an XML default parameter (<default name=\"NAME\" .../> in the "
                        "scene, used as $NAME); repeatable. Unknown names are an error")
    p.add_argument("--res", type=_positive_int, metavar="PIXELS",
                   help="image resolution in pixels: shorthand for -D res=PIXELS, for scenes "
                        "that declare a 'res' parameter (as scenes/cbox.xml does; wins over "
                        "-D res=). Default: the scene's own")
    p.add_argument("--max-depth", type=_max_depth, metavar="N",
                   help="longest path, in vertices from the camera (1: emitters seen "
                        "directly, 2: direct illumination, -1: unbounded). Default: the "
                        "scene's pathgrad integrator setting, else 6")
    p.add_argument("--sensor", type=_non_negative_int, default=0, metavar="INDEX",
                   help="index of the sensor (camera) to render from, in scene order "
                        "(default 0)")
    p.add_argument("-q", "--quiet", action="store_true",
                   help="no progress bar")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG, formatter_class=_Formatter,
        description="pathgrad: render Mitsuba 3 scenes with the pathgrad differentiable "
                    "path tracer, and check its gradients against finite differences.",
        epilog="examples:\n"
               "  pathgrad render scenes/cbox.xml -o out/cbox.exr --spp 256 --res 128\n"
               "  pathgrad gradcheck scenes/cbox.xml --param red.reflectance.value --res 32\n"
               "\n"
               "'pathgrad COMMAND --help' lists the flags of a command. Exit status: 0 on\n"
               "success, 1 when a gradient check fails, 2 on bad input. See docs/cli.md.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    r = sub.add_parser(
        "render", formatter_class=_Formatter,
        help="render a scene to an EXR or PNG image",
        description="Render a Mitsuba XML scene with pathgrad and write the image: "
                    "linear OpenEXR for '.exr' (plus an sRGB '.png' preview next to it), "
                    "8-bit sRGB for '.png'. The samples are split into passes of at most "
                    "--pass-spp samples per pixel, each with its own seed, averaged "
                    "weighted by their sample counts.",
        epilog="example:\n  pathgrad render scenes/cbox.xml -o out/cbox.exr --spp 256 --res 128")
    _add_scene_args(r)
    r.add_argument("-o", "--output", metavar="FILE",
                   help="output image, '.exr' or '.png' (default: out/<scene name>.exr)")
    r.add_argument("--spp", type=_positive_int, metavar="N",
                   help="samples per pixel (default: the scene's sampler sample_count)")
    r.add_argument("--seed", type=_seed, default=0,
                   help="random seed, 0..2^32-1 (default 0); the same seed, spp and "
                        "--pass-spp give the same image")
    r.add_argument("--pass-spp", type=_positive_int, default=64, metavar="N",
                   help="at most N samples per pixel per pass (default 64); the progress "
                        "bar advances per pass")
    r.add_argument("--exposure", type=float, default=0.0, metavar="STOPS",
                   help="exposure of the PNG image or preview, in stops (x2^STOPS; "
                        "default 0). The EXR is never scaled")
    r.set_defaults(run=_cmd_render)

    g = sub.add_parser(
        "gradcheck", formatter_class=_Formatter,
        help="check a parameter's gradient against finite differences",
        description="Compare pathgrad's forward- and reverse-mode gradients with respect to "
                    "one scene parameter (along --direction) with central finite differences "
                    "(pathgrad.gradcheck; see docs/gradcheck.md). Writes the finite-difference "
                    "and forward-mode gradient images (EXR, and PNGs with one shared colour "
                    "scale: blue negative, white zero, red positive), prints the report and "
                    "exits with status 0 if the check passed, 1 if it failed.",
        epilog="example:\n"
               "  pathgrad gradcheck scenes/cbox.xml --param red.reflectance.value --res 32\n"
               "  pathgrad gradcheck scenes/cbox.xml --param light.emitter.radiance.value "
               "--eps 0.5 --direction 1,1,1")
    _add_scene_args(g)
    g.add_argument("--param", "-p", required=True, metavar="KEY",
                   help="scene parameter key as listed by mi.traverse(scene), "
                        "e.g. red.reflectance.value (required)")
    g.add_argument("--eps", type=_positive_float, default=1e-2,
                   help="finite-difference step, in the parameter's own units (default 0.01); "
                        "for geometry choose one that moves silhouettes by ~0.05-0.1 pixel")
    g.add_argument("--spp", type=_positive_int, default=64, metavar="N",
                   help="samples per pixel of each AD (forward and reverse) render "
                        "(default 64)")
    g.add_argument("--spp-fd", type=_positive_int, metavar="N",
                   help="samples per pixel of each finite-difference render "
                        "(default 4 x --spp)")
    g.add_argument("--seeds", type=_seeds_count, default=4, metavar="N",
                   help="independent repetitions, >= 2; their spread gives the noise level "
                        "(default 4)")
    g.add_argument("--direction", type=_float_list, metavar="V1,V2,...",
                   help="perturbation direction, comma-separated: one value per parameter "
                        "component, or one value for all (a 3-vector translates "
                        "*.vertex_positions), e.g. -1,0,0. Default: all ones")
    g.add_argument("--tol", type=_non_negative_float, default=0.05,
                   help="systematic relative error allowed on top of 2x the measured noise "
                        "(default 0.05 = 5%%)")
    g.add_argument("--out", default=os.path.join("out", "gradcheck"), metavar="FOLDER",
                   help="output folder of the gradient images (default out/gradcheck)")
    g.set_defaults(run=_cmd_gradcheck)
    return parser


# --------------------------------------------------------------------------
# Shared helpers
# --------------------------------------------------------------------------

def _scene_defines(args) -> dict:
    kw = dict(args.defines)
    if args.res is not None:
        kw["res"] = str(args.res)
    return kw


def _declared_defaults(path: str) -> list[str]:
    """Names of the <default> parameters the XML file declares (best effort)."""
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            text = f.read()
    except OSError:
        return []
    return re.findall(r"<default\s+name\s*=\s*[\"']([^\"']+)[\"']", text)


def _load_scene(args):
    import pathgrad

    path = args.scene
    if not os.path.exists(path):
        raise CLIError(f"scene file '{path}' does not exist (working directory: "
                       f"{os.getcwd()})")
    if not os.path.isfile(path):
        raise CLIError(f"'{path}' is not a file: pass a Mitsuba XML scene file")
    defines = _scene_defines(args)
    try:
        scene = pathgrad.load_scene(path, **defines)
    except RuntimeError as e:
        msg = str(e)
        m = re.search(r"unused parameters:(.*)", msg, re.S)
        if m:
            unused = re.findall(r"\$(\w+)=", m.group(1))
            declared = _declared_defaults(path)
            flag = ("--res / -D" if "res" in unused and args.res is not None else "-D")
            raise CLIError(
                f"scene '{path}' has no parameter {', '.join(repr(u) for u in unused)} "
                f"(set with {flag}). Parameters it declares: "
                f"{', '.join(declared) if declared else 'none'}") from None
        msg = re.sub(r"^\[[\w.]+:\d+\]\s*", "", msg)
        raise CLIError(f"could not load scene '{path}': {msg}") from None
    n = len(scene.sensors())
    if args.sensor >= n:
        raise CLIError(f"--sensor {args.sensor} is out of range: the scene has {n} "
                       f"sensor(s), numbered from 0")
    return scene


def _png_rgb(img):
    """(H, W, C) -> (H, W, 3) for the PNG writer (grey films repeated)."""
    import numpy as np
    a = np.asarray(img)
    if a.shape[-1] in (1, 2):  # luminance (+ alpha)
        a = np.repeat(a[..., :1], 3, axis=-1)
    return a[..., :3]


# --------------------------------------------------------------------------
# render
# --------------------------------------------------------------------------

def _cmd_render(args) -> int:
    import numpy as np

    import pathgrad
    from pathgrad.imageio_utils import write_exr, write_png
    from pathgrad.passes import render_passes

    out = args.output or os.path.join(
        "out", os.path.splitext(os.path.basename(args.scene))[0] + ".exr")
    suffix = os.path.splitext(out)[1].lower()
    if suffix not in (".exr", ".png"):
        raise CLIError(f"output '{out}' must end with .exr (linear HDR) or .png (sRGB)")
    if not math.isfinite(args.exposure):
        raise CLIError("--exposure must be finite")

    scene = _load_scene(args)
    spp = args.spp if args.spp is not None else int(
        scene.sensors()[args.sensor].sampler().sample_count())
    passes = render_passes(spp, args.seed, args.pass_spp)

    bar = None
    if len(passes) > 1 and not args.quiet:
        from tqdm.auto import tqdm
        bar = tqdm(total=spp, unit="spp", desc="render", leave=False)
    t0 = time.perf_counter()
    acc = None
    try:
        for pass_spp, pass_seed in passes:
            img = pathgrad.render(scene, spp=pass_spp, seed=pass_seed, sensor=args.sensor,
                                  max_depth=args.max_depth)
            part = np.array(img, dtype=np.float64) * pass_spp
            acc = part if acc is None else acc + part
            if bar is not None:
                bar.update(pass_spp)
    finally:
        if bar is not None:
            bar.close()
    image = (acc / spp).astype(np.float32)
    seconds = time.perf_counter() - t0

    written = []
    if suffix == ".exr":
        write_exr(out, image)
        preview = os.path.splitext(out)[0] + ".png"
        write_png(preview, _png_rgb(image), exposure=args.exposure)
        written += [out, preview]
    else:
        write_png(out, _png_rgb(image), exposure=args.exposure)
        written.append(out)
    h, w = image.shape[:2]
    print(f"rendered {w}x{h} at {spp} spp ({len(passes)} pass{'es' if len(passes) > 1 else ''}) "
          f"in {seconds:.2f} s -> {out}")
    if len(written) > 1:
        print(f"  preview {written[1]}")
    if not np.isfinite(image).all():
        print("warning: the image contains NaN or infinite values", file=sys.stderr)
    return EXIT_OK


# --------------------------------------------------------------------------
# gradcheck
# --------------------------------------------------------------------------

def _file_stem(key: str) -> str:
    return re.sub(r"[^\w.-]+", "_", key)


def _cmd_gradcheck(args) -> int:
    import numpy as np

    import pathgrad
    from pathgrad.imageio_utils import write_exr, write_gradient_png

    scene = _load_scene(args)
    try:
        pathgrad.parameters(scene, args.param, enable_grad=False)  # checks the key
    except pathgrad.ParameterError as e:
        raise CLIError(str(e)) from None

    t0 = time.perf_counter()
    try:
        report = pathgrad.gradcheck(
            scene, args.param, args.direction, eps=args.eps, spp=args.spp,
            spp_fd=args.spp_fd, seeds=args.seeds, tol=args.tol, sensor=args.sensor,
            max_depth=args.max_depth, progress=not args.quiet)
    except (ValueError, pathgrad.ParameterError) as e:  # e.g. wrong direction length
        raise CLIError(str(e)) from None
    seconds = time.perf_counter() - t0

    fd = report.fd_per_seed.mean(0)
    ad = report.forward_per_seed.mean(0)
    # one colour limit for both PNGs (95th percentile of |g| summed over
    # channels, as gradient_to_rgb would pick for each alone)
    both = np.abs(np.concatenate([fd.sum(-1).ravel(), ad.sum(-1).ravel()]))
    limit = float(np.percentile(both, 95)) or float(both.max()) or 1.0

    stem = os.path.join(args.out, _file_stem(args.param))
    written = []
    for name, img in (("fd", fd), ("ad", ad)):
        write_exr(f"{stem}.{name}.exr", img)
        write_gradient_png(f"{stem}.{name}.png", img, limit=limit)
        written += [f"{stem}.{name}.exr", f"{stem}.{name}.png"]

    print(report)
    timing = ", ".join(f"{k} {v:.1f} s" for k, v in report.seconds.items())
    print(f"  time    : {seconds:.1f} s ({timing})")
    print(f"  images  : {stem}.{{fd,ad}}.{{exr,png}} (PNG colour limit +-{limit:.3g} "
          "image units per unit of the parameter)")
    print("PASSED" if report.passed else "FAILED")
    return EXIT_OK if report.passed else EXIT_FAILED


# --------------------------------------------------------------------------
# Entry point
# --------------------------------------------------------------------------

def _join_negative_direction(argv: list[str]) -> list[str]:
    """``--direction -1,0,0`` -> ``--direction=-1,0,0`` (argparse would take
    the value for an option)."""
    out, i = [], 0
    while i < len(argv):
        if (argv[i] == "--direction" and i + 1 < len(argv)
                and re.fullmatch(r"-[\d.]\S*", argv[i + 1])):
            out.append(f"--direction={argv[i + 1]}")
            i += 2
        else:
            out.append(argv[i])
            i += 1
    return out


def main(argv=None) -> int:
    """Run the command line with ``argv`` (default ``sys.argv[1:]``); returns
    the exit status instead of exiting (``--help`` and usage errors too)."""
    parser = build_parser()
    argv = _join_negative_direction(list(sys.argv[1:] if argv is None else argv))
    try:
        args = parser.parse_args(argv)
    except SystemExit as e:  # --help (0) or a usage error (2, message printed)
        return e.code if isinstance(e.code, int) else EXIT_USAGE
    try:
        return args.run(args)
    except CLIError as e:
        print(f"{PROG} {args.command}: error: {e}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print(f"{PROG} {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
