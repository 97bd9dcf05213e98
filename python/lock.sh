#!/usr/bin/env bash
# Regenerate python/requirements.lock from python/requirements.in, and
# python/build-requirements.lock (maturin, for the image's build stage) from build-requirements.in.
#
# The lock is resolved for the benchmark image, not for the host running this script:
# CPython 3.13 on manylinux x86_64 (glibc 2.28 or newer; Debian trixie has 2.41), wheels only,
# every file pinned by sha256 so the image build can use `pip install --require-hashes`.
#
# Usage:  python/lock.sh            # re-resolve to the newest releases
#         python/lock.sh --upgrade-package polars   # (extra args go to `uv pip compile`)
#
# Needs uv (https://docs.astral.sh/uv/). Without one on PATH, uv is installed into a
# throwaway venv under ${TMPDIR:-/tmp}. Behind a TLS-intercepting proxy, uv uses the system
# CA store (UV_NATIVE_TLS=1) or whatever SSL_CERT_FILE points at.
#
# Afterwards the script checks that every locked wheel downloads and matches its hash for the
# image's platform (pip download --require-hashes), and prints the total size of the wheels.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cd "$here"

if command -v uv >/dev/null 2>&1; then
    uv=uv
else
    venv="${TMPDIR:-/tmp}/rpb-lock-venv"
    [ -x "$venv/bin/uv" ] || { python3 -m venv "$venv" && "$venv/bin/pip" install --quiet uv; }
    uv="$venv/bin/uv"
fi
export UV_NATIVE_TLS="${UV_NATIVE_TLS:-1}"

"$uv" pip compile requirements.in \
    --python-version 3.13 \
    --python-platform x86_64-manylinux_2_28 \
    --generate-hashes \
    --only-binary :all: \
    --custom-compile-command "python/lock.sh" \
    -o requirements.lock \
    "$@"
"$uv" pip compile build-requirements.in \
    --python-version 3.13 \
    --python-platform x86_64-manylinux_2_28 \
    --generate-hashes \
    --only-binary :all: \
    --custom-compile-command "python/lock.sh" \
    -o build-requirements.lock

# Verify: every pin resolves to a cp313/abi3/py3 manylinux x86_64 wheel whose hash matches.
wheels="$(mktemp -d "${TMPDIR:-/tmp}/rpb-wheels313.XXXXXX")"
trap 'rm -rf "$wheels"' EXIT
python3 -m pip download --quiet --require-hashes --no-deps --only-binary=:all: \
    --python-version 3.13 --implementation cp \
    --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 \
    --platform manylinux2014_x86_64 \
    -r requirements.lock -r build-requirements.lock -d "$wheels"
echo "locked wheels:"
ls -1 "$wheels"
du -ch "$wheels"/*.whl | tail -n 1
