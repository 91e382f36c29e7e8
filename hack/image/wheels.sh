#!/usr/bin/env bash
# dist/wheels: the project and its pinned runtime dependencies as wheels, what the
# Containerfile installs (its build has no network). From PyPI, on the host.
set -euo pipefail
cd "$(dirname "$0")/../.."
rm -rf dist/wheels
.venv/bin/python -m pip wheel --quiet --disable-pip-version-check --wheel-dir dist/wheels .
printf '[image] %s wheels in dist/wheels\n' "$(ls dist/wheels | wc -l)" >&2
