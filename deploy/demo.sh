#!/usr/bin/env bash
# The one-command demo: the embedded risk engine (no Kafka, no Redis) on the shared data.
#
#   deploy/demo.sh [riskstream run arguments...]
#
# Creates .venv and installs riskstream into it when needed, then runs `riskstream run`.
# Relative paths in the arguments are relative to the caller's directory.
set -euo pipefail
# shellcheck source=deploy/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

ensure_venv
ensure_installed
exec "$VENV/bin/riskstream" run "$@"
