#!/usr/bin/env bash
# Set up (if needed) and run the test suite. Extra arguments go to pytest,
# e.g. `bash scripts/run_tests.sh -m slow` for the heavy cases.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/setup.sh"
cd "$PG_ROOT"
exec "$PG_PY" -m pytest -q "$@"
