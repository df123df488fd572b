#!/usr/bin/env bash
# Set up (if needed) and run an example (default: the main one, wall albedos and
# light of the Cornell box from one image, ~30 s). Optionally name another:
#   bash scripts/run_example.sh shape_reconstruction --fast
# Names: materials_lighting, occluder_from_shadow, shape_reconstruction,
# texture_recovery, neural_texture_torch, render_and_gradient. Other
# arguments go to the script (`--help` lists them).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/setup.sh"
cd "$PG_ROOT"
name="materials_lighting"
if [ $# -gt 0 ] && [ -f "examples/${1%.py}.py" ]; then
    name="${1%.py}"
    shift
fi
exec "$PG_PY" "examples/$name.py" "$@"
