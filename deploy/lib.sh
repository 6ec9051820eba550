# shellcheck shell=bash
# Shared helpers of the deploy/*.sh scripts; source it, do not run it.
#
# Sets REPO_ROOT (absolute, whatever the caller's directory) and VENV, and defines:
#   phase TEXT        print a phase header (with the seconds elapsed so far) on stderr
#   die TEXT          print an error on stderr and exit 1
#   as_root CMD...    run CMD as root: directly when root, else through `sudo -n`
#   apt_install PKG.. apt-get install (refreshing the package lists once if that fails)
#   ensure_venv       create $VENV with Python >= 3.11 if it is missing or broken
#   ensure_installed  `pip install -e .` into $VENV unless the riskstream CLI already runs
#                     from an install of the current pyproject.toml (new dependencies)

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="$REPO_ROOT/.venv"
export PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_ROOT_USER_ACTION=ignore

phase() { printf '\n==> [%4ss] %s\n' "$SECONDS" "$*" >&2; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }

as_root() {
    if [ "$(id -u)" = 0 ]; then
        "$@"
    elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
        sudo -n "$@"
    else
        die "root is needed to run: $* (run it with sudo, or as root)"
    fi
}

apt_install() {
    command -v apt-get >/dev/null 2>&1 || die "apt-get not found; install by hand: $*"
    export DEBIAN_FRONTEND=noninteractive
    as_root apt-get install -y -q --no-install-recommends "$@" \
        || { as_root apt-get update -q && as_root apt-get install -y -q --no-install-recommends "$@"; }
}

_find_python() {
    local candidate
    for candidate in python3.11 python3; do
        if command -v "$candidate" >/dev/null 2>&1 \
            && "$candidate" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
            command -v "$candidate"
            return 0
        fi
    done
    return 1
}

ensure_venv() {
    if [ -x "$VENV/bin/python" ] && "$VENV/bin/python" -c 'import sys' 2>/dev/null; then
        return 0
    fi
    local python
    python="$(_find_python)" || { apt_install python3 python3-venv; python="$(_find_python)"; } \
        || die "Python >= 3.11 not found"
    echo "creating $VENV with $python" >&2
    rm -rf "$VENV"
    if ! "$python" -m venv "$VENV"; then
        # Debian ships ensurepip separately (python3-venv).
        rm -rf "$VENV"
        apt_install python3-venv
        "$python" -m venv "$VENV"
    fi
    "$VENV/bin/python" -m pip install -q --upgrade pip
}

ensure_installed() {
    local stamp="$VENV/.riskstream-pyproject.sha256" want
    want="$(sha256sum "$REPO_ROOT/pyproject.toml" | cut -d' ' -f1)"
    if ! "$VENV/bin/riskstream" --help >/dev/null 2>&1 || [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
        "$VENV/bin/python" -m pip install -q -e "$REPO_ROOT"
        echo "$want" > "$stamp"
    fi
}
