#!/usr/bin/env bash
# The one command that runs riskstream's whole test suite, on a brand-new Debian machine too.
#
#   deploy/test.sh [pytest arguments...]     e.g. deploy/test.sh tests/services -q
#
# Creates .venv if missing, installs the package with its dev, train and peers extras (pip caches
# downloads in ~/.cache/pip), installs Java, Maven, redis-server and prometheus from Debian
# when they are missing (as root, or with sudo -n), downloads the Kafka broker jars once
# (~/.cache/riskstream, Maven's ~/.m2), then runs `ruff check .` and pytest. The pytest
# fixtures start and stop Kafka, Redis and Prometheus themselves; a service that cannot
# start fails its tests, it never skips them. Works from any directory.
set -euo pipefail
# shellcheck source=deploy/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$REPO_ROOT"

phase "1/6 Python virtualenv: $VENV"
ensure_venv
"$VENV/bin/python" --version

phase "2/6 Python packages: pip install -e '.[dev,train,peers]'"
"$VENV/bin/python" -m pip install -q -e '.[dev,train,peers]'

phase "3/6 system packages: Java, Maven, redis-server, prometheus"
"$VENV/bin/python" -m engine.services install redis prometheus

phase "4/6 Kafka broker jars"
"$VENV/bin/python" -m engine.services install kafka

phase "5/6 ruff check ."
"$VENV/bin/ruff" check .

phase "6/6 pytest $*"
status=0
"$VENV/bin/python" -m pytest "$@" || status=$?
phase "finished: pytest exit status $status"
exit "$status"
