#!/usr/bin/env bash
# Set up (if needed) and run the main example. Extra arguments go to the
# example script (see `bash scripts/run_example.sh --help`).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/setup.sh"
cd "$PG_ROOT"
exec "$PG_PY" examples/render_and_gradient.py "$@"
