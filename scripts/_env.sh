# Shared by scripts/*: find a Python >= 3.12, install uv, sync .venv from uv.lock.
# Sourced, not executed. Idempotent: a second run takes about a second.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
TOOLS="$ROOT/.tools"
VENV="$ROOT/.venv"
export UV_PROJECT_ENVIRONMENT="$VENV"
export UV_LINK_MODE=copy
# Ship bytecode with the packages: with PYTHONDONTWRITEBYTECODE set (as here),
# every start would compile Django from source again (2 s instead of 0.3 s).
export UV_COMPILE_BYTECODE=1

say() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }

python_ok() { "$1" -c 'import sys; sys.exit(sys.version_info < (3, 12))' 2>/dev/null; }

# A Python >= 3.12: $PYTHON if set, then python3.1x on PATH, then pyenv's and
# /usr/local's installs (newest first). Debian's python3 here is 3.11, too old.
find_python() {
  local c
  if [[ -n "${PYTHON:-}" ]]; then
    python_ok "$PYTHON" || die "PYTHON=$PYTHON is not Python >= 3.12"
    echo "$PYTHON"; return
  fi
  for c in python3.14 python3.13 python3.12 python3; do
    if command -v "$c" >/dev/null && python_ok "$(command -v "$c")"; then
      command -v "$c"; return
    fi
  done
  for c in $(ls -d "${PYENV_ROOT:-$HOME/.pyenv}"/versions/3.1[2-9]*/bin/python3 \
             /usr/local/bin/python3.1[2-9] /opt/python*/bin/python3 2>/dev/null | sort -rV); do
    if python_ok "$c"; then echo "$c"; return; fi
  done
  die "no Python >= 3.12 found: install one (e.g. 'pyenv install 3.12') or set PYTHON=/path/to/python3.12"
}

# uv in a private venv so the system Python is never touched.
ensure_uv() {
  local py="$1"
  if [[ ! -x "$TOOLS/bin/uv" ]]; then
    say "installing uv into .tools/"
    "$py" -m venv "$TOOLS"
    "$TOOLS/bin/python" -m pip install --quiet --disable-pip-version-check 'uv>=0.5,<1'
  fi
  echo "$TOOLS/bin/uv"
}

# Sync .venv with uv.lock (dev group included). --frozen when the lock exists so a
# fresh clone gets exactly what was tested.
ensure_venv() {
  local py uv
  py="$(find_python)"
  uv="$(ensure_uv "$py")"
  if [[ -f "$ROOT/uv.lock" ]]; then
    "$uv" sync --quiet --frozen --python "$py" --project "$ROOT" "$@"
  else
    "$uv" sync --quiet --python "$py" --project "$ROOT" "$@"
  fi
  export PATH="$VENV/bin:$PATH"
  # The project's own modules are not installed, so compile them here (skips
  # what is up to date).
  python -m compileall -q -j 0 "$ROOT/jobs" "$ROOT/webproject" "$ROOT/settings" >/dev/null || true
}

# Install a Debian package: as root directly, else with sudo; refreshing the
# package lists only when the first attempt fails (a fresh image has none).
apt_install() {
  local sudo=()
  if [[ "$(id -u)" != 0 ]]; then
    command -v sudo >/dev/null || return 1
    sudo=(sudo)
  fi
  command -v apt-get >/dev/null || return 1
  say "installing $* (Debian packages)"
  "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null 2>&1 \
    || {
      # The install decides: an update fails as a whole when one extra source
      # does (an expired key), while Debian's own lists came in fine.
      "${sudo[@]}" apt-get update -qq >/dev/null || true
      "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
    }
}

# Debian's chromium for the browser tests (tests/browser), when missing.
# Playwright drives it; `playwright install` downloads are never used.
ensure_chromium() {
  [[ -x /usr/bin/chromium ]] && return
  apt_install chromium || true
  [[ -x /usr/bin/chromium ]] || die "chromium is not installed: apt-get install chromium (the browser tests need it)"
}

# A Debian program (its package has the same name) when missing. The package
# starts a system service on 6379; we run instances of our own, so it is disabled.
ensure_debian_server() {
  local program=$1
  command -v "$program" >/dev/null && return
  apt_install "$program" || true
  command -v "$program" >/dev/null \
    || die "$program is not installed: apt-get install $program, then run again"
  (command -v systemctl >/dev/null && systemctl disable --now "$program" >/dev/null 2>&1) || true
}

ensure_redis_server() { ensure_debian_server redis-server; }
ensure_redis_sentinel() { ensure_debian_server redis-sentinel; }  # the failover tests

# The directory of Debian's PostgreSQL programs (initdb, pg_ctl), newest version
# first; installs the `postgresql` package when there is none. Our clusters are
# our own (scripts/postgres): the package's system service is not used.
ensure_postgres() {
  local bin
  bin="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -rV | head -n 1)"
  if [[ -z "$bin" || ! -x "$bin/initdb" ]]; then
    apt_install postgresql || true
    bin="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -rV | head -n 1)"
    [[ -n "$bin" && -x "$bin/initdb" ]] \
      || die "PostgreSQL is not installed: apt-get install postgresql, then run again"
    # The package may start a cluster of its own on 5432; nothing here uses it.
    (command -v systemctl >/dev/null && systemctl disable --now postgresql >/dev/null 2>&1) || true
    (command -v pg_ctlcluster >/dev/null && pg_ctlcluster "$(basename "$(dirname "$bin")")" main stop >/dev/null 2>&1) || true
  fi
  echo "$bin"
}
