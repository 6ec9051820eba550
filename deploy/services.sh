#!/usr/bin/env bash
# Local Kafka and Redis for development: a thin wrapper of `riskstream services`.
#
#   deploy/services.sh install [kafka|redis|prometheus|all]
#   deploy/services.sh start [kafka|redis|all] [--kafka-port N] [--redis-port N]
#   deploy/services.sh status | env | stop [kafka|redis|all]
#
# Runs from the repository root, so state, logs and services.env live in .run/services
# of this checkout; `eval "$(deploy/services.sh env)"` sets RISKSTREAM_KAFKA_BOOTSTRAP
# and RISKSTREAM_REDIS_URL in the calling shell.
set -euo pipefail
# shellcheck source=deploy/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$REPO_ROOT"

ensure_venv
ensure_installed
exec "$VENV/bin/riskstream" services "${@:---help}"
