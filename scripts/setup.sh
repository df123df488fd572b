#!/usr/bin/env bash
# Idempotent setup for pathgrad on a fresh Debian 12 machine.
#  1. libLLVM >= 16 (Dr.Jit 1.5's LLVM backend crashes on Debian's default libLLVM 15)
#  2. a virtual environment in .venv with pathgrad installed (editable) and its test,
#     examples, torch and distributed (Ray) extras (PATHGRAD_EXTRAS overrides; torch is the
#     local CPU wheel)
# Safe to run twice: each step checks first and does nothing when already done.
# Source it or run it; it sets PG_PY to the venv's python.
set -euo pipefail

PG_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PG_VENV="${PATHGRAD_VENV:-$PG_ROOT/.venv}"
PG_EXTRAS="${PATHGRAD_EXTRAS:-test,examples,torch,distributed}"

say() { printf '[pathgrad setup] %s\n' "$*" >&2; }

have_llvm16() {
    # Dr.Jit picks the newest libLLVM it can find; honour an explicit path too.
    if [ -n "${DRJIT_LIBLLVM_PATH:-}" ] && [ -f "$DRJIT_LIBLLVM_PATH" ]; then return 0; fi
    local f v
    for f in /usr/lib/*/libLLVM-*.so* /usr/lib/llvm-*/lib/libLLVM*.so* /usr/lib/*/libLLVM.so.*; do
        [ -e "$f" ] || continue
        v=$(basename "$f" | sed -E 's/^libLLVM[-.]?(so\.)?([0-9]+).*/\2/')
        case "$v" in ''|*[!0-9]*) continue ;; esac
        [ "$v" -ge 16 ] && return 0
    done
    return 1
}

if ! have_llvm16; then
    say "no libLLVM >= 16 found (Dr.Jit 1.5 crashes on Debian's libLLVM 15); installing libllvm19 with apt"
    SUDO=""
    if [ "$(id -u)" -ne 0 ]; then
        if command -v sudo >/dev/null 2>&1; then SUDO="sudo"; fi
    fi
    if command -v apt-get >/dev/null 2>&1 && { [ "$(id -u)" -eq 0 ] || [ -n "$SUDO" ]; }; then
        $SUDO apt-get update -qq >/dev/null || true
        if ! DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq libllvm19 >/dev/null; then
            say "ERROR: 'apt-get install libllvm19' failed."
        fi
    fi
    if ! have_llvm16; then
        say "ERROR: Dr.Jit needs libLLVM 16 or newer and none could be installed."
        say "       Install one yourself (Debian/Ubuntu: 'sudo apt-get install libllvm19'),"
        say "       or point DRJIT_LIBLLVM_PATH at a libLLVM.so of version 16+, then run this again."
        exit 1
    fi
fi

if [ ! -x "$PG_VENV/bin/python" ]; then
    say "creating virtual environment in $PG_VENV"
    python3 -m venv "$PG_VENV"
fi
PG_PY="$PG_VENV/bin/python"

# Reinstall only when pyproject.toml changed since the last install.
stamp="$PG_VENV/.pathgrad-installed"
want="$(sha256sum "$PG_ROOT/pyproject.toml" | cut -d' ' -f1) $PG_EXTRAS"
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
    say "installing pathgrad[$PG_EXTRAS] into $PG_VENV"
    "$PG_PY" -m pip install -q --disable-pip-version-check --upgrade pip >/dev/null
    "$PG_PY" -m pip install -q --disable-pip-version-check -e "$PG_ROOT[$PG_EXTRAS]"
    echo "$want" > "$stamp"
fi
export PG_PY PG_ROOT
