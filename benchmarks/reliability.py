"""Reliability cases: bad input, degenerate scenes and extreme scales, each
run in its own process (memory cap, timeout) through both entry points,
``pathgrad.render`` and ``mi.render`` with the ``pathgrad`` plugin, as a new
user would write them. Each outcome is classified: a clear error (the
message names what it should), a finite result, a silent NaN/Inf, a crash
(a signal), or a timeout.

    .venv/bin/python benchmarks/reliability.py            # ~5 min on 2 cores
    .venv/bin/python benchmarks/reliability.py --only nan_vertex

Writes ``benchmarks/results/reliability.{json,txt}``.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import textwrap

HERE = os.path.dirname(os.path.abspath(__file__))
RESULTS = os.path.join(HERE, "results")
MEMORY_CAP = 8 * 2**30
TIMEOUT_S = 300

PRELUDE = textwrap.dedent('''
    import json, resource, sys
    resource.setrlimit(resource.RLIMIT_AS, ({cap}, {cap}))
    import drjit as dr, mitsuba as mi, numpy as np
    import pathgrad
    from pathgrad import scenes, shapes
    KEY = "obj.vertex_positions"

    def scene(scale=1.0, res=16, max_depth=2):
        return scenes.object_scene(
            {{"obj": shapes.icosphere(2, 0.8 * scale, name="obj", smooth=True,
                                      bsdf=scenes.diffuse(0.5))}},
            res=res, origin=(0, 0, 4 * scale), max_depth=max_depth,
            lights={{"lamp": {{"type": "point", "position": [2 * scale, 2 * scale, 3 * scale],
                               "intensity": {{"type": "rgb", "value": 20 * scale ** 2}}}}}})

    def with_grad(s, key, edit=None):
        params = mi.traverse(s)
        v = type(params[key])(dr.detach(params[key]))
        if edit is not None:
            v = edit(v)
        dr.enable_grad(v)
        params[key] = v
        params.update()
        return params

    def run(entry, s, params=None, mode="backward", spp=4, key=KEY):
        R = pathgrad.render if entry == "pathgrad" else mi.render
        if mode == "primal" or params is None:
            img = R(s, spp=spp) if entry == "pathgrad" else mi.render(s, spp=spp)
            grads = []
        else:
            img = R(s, params, spp=spp)
            v = params[key] if key in params else None
            if mode == "backward":
                dr.backward(dr.mean(img, axis=None))
                grads = np.array(dr.grad(v)).ravel() if v is not None else np.zeros(0)
            else:
                dr.set_grad(v, 1.0)
                grads = np.array(dr.forward_to(img)).ravel()
        img = np.array(img).ravel()
        print("RESULT " + json.dumps({{"image_nonfinite": int((~np.isfinite(img)).sum()),
                                      "grad_nonfinite": int((~np.isfinite(grads)).sum()),
                                      "grad_entries": int(grads.size),
                                      "image_max": float(np.nanmax(np.abs(img))) if img.size else 0.0}}))
''').format(cap=MEMORY_CAP)

NAN = "float('nan')"
INF = "float('inf')"


def _set_entry(i, value):
    return f"lambda v: (v.__setitem__({i}, {value}), v)[1]"


#: name -> (code building ``s`` and calling ``run(entry, ...)``, what a clear
#: error must name, or None when a finite result is the right answer)
CASES = {
    "nan_vertex_backward": (f"s = scene(); run(E, s, with_grad(s, KEY, {_set_entry(4, NAN)}))",
                            "obj.vertex_positions"),
    "nan_vertex_forward": (f"s = scene(); run(E, s, with_grad(s, KEY, {_set_entry(4, NAN)}), "
                           "'forward')", "obj.vertex_positions"),
    "inf_vertex_backward": (f"s = scene(); run(E, s, with_grad(s, KEY, {_set_entry(4, INF)}))",
                            "obj.vertex_positions"),
    "nan_vertex_primal": (f"s = scene(); p = mi.traverse(s); v = mi.Float(p[KEY]); v[4] = {NAN}; "
                          "p[KEY] = v; p.update(); run(E, s, mode='primal')",
                          "obj.vertex_positions"),
    "nan_reflectance_backward": (
        "s = scene(); k = 'obj.bsdf.reflectance.value'; "
        f"run(E, s, with_grad(s, k, lambda v: mi.Color3f(0.5, {NAN}, 0.5)), key=k)",
        "obj.bsdf.reflectance.value"),
    "nan_reflectance_primal": (
        "s = scene(); p = mi.traverse(s); k = 'obj.bsdf.reflectance.value'; "
        f"p[k] = mi.Color3f(0.5, {NAN}, 0.5); p.update(); run(E, s, mode='primal')",
        "obj.bsdf.reflectance.value"),
    "nan_emitter_primal": (
        "s = pathgrad.load_scene('scenes/cbox.xml', res=16); p = mi.traverse(s); "
        f"k = 'light.emitter.radiance.value'; p[k] = mi.Color3f({NAN}, 1, 1); p.update(); "
        "run(E, s, mode='primal')", "light.emitter.radiance.value"),
    "nan_emitter_backward": (
        "s = pathgrad.load_scene('scenes/cbox.xml', res=16); k = 'light.emitter.radiance.value'; "
        f"run(E, s, with_grad(s, k, lambda v: mi.Color3f({NAN}, 1, 1)), key=k)",
        "light.emitter.radiance.value"),
    "sampler_sample_count_0": (
        "d = {'type': 'scene', 'integrator': {'type': 'pathgrad'}, 'sky': {'type': 'constant'},"
        " 'sensor': {'type': 'perspective', 'sampler': {'type': 'independent', 'sample_count': 0},"
        " 'film': {'type': 'hdrfilm', 'width': 8, 'height': 8}}}; s = pathgrad.load_scene(d); "
        "(mi.render(s, spp=0) if E == 'mi' else pathgrad.render(s, spp=0)); print('RESULT {}')",
        "spp"),
    "negative_spp": ("s = scene(); run(E, s, mode='primal', spp=-3)", "spp"),
    "fractional_spp": ("s = scene(); run(E, s, mode='primal', spp=2.5)", "spp"),
    "grad_on_missing_key": ("s = scene(); p = mi.traverse(s); p.keep(['^nothing$']); run(E, s, p)",
                            "gradients"),
    "grad_on_nondiff_key": (
        "s = scene(); p = mi.traverse(s); k = [k for k in p.keys() if k.endswith('x_fov')][0]; "
        "dr.enable_grad(p[k]); p.update(); run(E, s, p, key=k)", "x_fov"),
    "grad_on_faces": ("s = scene(); p = mi.traverse(s); p.keep(['^obj.faces$']); "
                      "dr.enable_grad(p['obj.faces']); run(E, s, p, key='obj.faces')", "obj.faces"),
    "write_without_update": (
        "s = scene(); p = mi.traverse(s); v = mi.Float(p[KEY]) * 1.1; dr.enable_grad(v); "
        "p[KEY] = v; run(E, s, p)", "update()"),
    "scale_1e-6": ("s = scene(1e-6); run(E, s, with_grad(s, KEY))", None),
    "scale_1e-3": ("s = scene(1e-3); run(E, s, with_grad(s, KEY))", None),
    "scale_1e3": ("s = scene(1e3); run(E, s, with_grad(s, KEY))", None),
    "scale_1e6": ("s = scene(1e6); run(E, s, with_grad(s, KEY))", None),
    "degenerate_mesh": (
        "d = {'obj': shapes.mesh_from_arrays('obj', np.zeros((3, 3)), np.array([[0, 1, 2]]), "
        "smooth=False)}; s = scenes.object_scene(d, res=8); run(E, s, with_grad(s, KEY))", None),
    "no_shapes_env_gradient": (
        "s = scenes.object_scene({}, res=8); k = 'sky.radiance.value'; "
        "run(E, s, with_grad(s, k), key=k)", None),
    "film_1x1": ("s = scene(res=1); run(E, s, with_grad(s, KEY))", None),
    "camera_inside_mesh": (
        "s = scenes.object_scene({'obj': shapes.icosphere(2, 5.0, name='obj')}, res=8); "
        "run(E, s, with_grad(s, KEY))", None),
    "max_depth_0": ("s = scene(max_depth=0); run(E, s, with_grad(s, KEY), spp=2)", None),
}


def run_case(name: str, entry: str) -> dict:
    code, expect = CASES[name]
    src = PRELUDE + f"\nE = {entry!r}\n" + code + "\n"
    try:
        r = subprocess.run([sys.executable, "-c", src], capture_output=True, text=True,
                           timeout=TIMEOUT_S, cwd=os.path.dirname(HERE))
    except subprocess.TimeoutExpired:
        return {"case": name, "entry": entry, "outcome": "timeout"}
    out = {"case": name, "entry": entry, "returncode": r.returncode}
    if r.returncode < 0:
        out["outcome"] = f"crash (signal {-r.returncode})"
    elif r.returncode != 0:
        msg = _error_message(r.stderr)
        named = expect is not None and expect in r.stderr
        out["outcome"] = "clear error" if named else "error (does not name it)"
        out["message"] = msg
    else:
        res = json.loads(r.stdout.split("RESULT ", 1)[1].splitlines()[0])
        out.update(res)
        bad = res.get("image_nonfinite", 0) + res.get("grad_nonfinite", 0)
        if bad:
            out["outcome"] = "silent NaN/Inf"
        elif expect is not None:
            out["outcome"] = "finite, but no error (expected one)"
        else:
            out["outcome"] = "finite"
    out["expected"] = "clear error naming " + repr(expect) if expect else "finite result"
    return out


def _error_message(stderr: str) -> str:
    """The most specific line of a traceback: pathgrad's own message when
    present (mi.render wraps it in Dr.Jit's custom-op error)."""
    lines = [ln for ln in stderr.splitlines() if ln and not ln.startswith((" ", "Traceback"))]
    for ln in lines:
        if "pathgrad" in ln or "ParameterError" in ln or "ValueError" in ln:
            return ln[:300]
    return lines[-1][:300] if lines else ""


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--only", nargs="*", help="case names (default: all)")
    args = ap.parse_args(argv)
    names = args.only or list(CASES)
    rows = []
    for name in names:
        for entry in ("pathgrad", "mi"):
            row = run_case(name, entry)
            rows.append(row)
            print(f"{name:28s} {entry:9s} {row['outcome']:38s} {row.get('message', '')[:110]}",
                  flush=True)
    good = sum(r["outcome"] in ("clear error", "finite") and
               (r["outcome"] == "finite") == r["expected"].startswith("finite") for r in rows)
    print(f"{good} of {len(rows)} end as they should")
    if not args.only:
        os.makedirs(RESULTS, exist_ok=True)
        with open(os.path.join(RESULTS, "reliability.json"), "w") as f:
            json.dump(rows, f, indent=1)
        with open(os.path.join(RESULTS, "reliability.txt"), "w") as f:
            for r in rows:
                f.write(f"{r['case']:28s} {r['entry']:9s} {r['outcome']:38s} "
                        f"{r.get('message', '')[:150]}\n")
            f.write(f"{good} of {len(rows)} end as they should\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
