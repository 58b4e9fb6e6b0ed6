#!/usr/bin/env bash
# The peers outside Python, for bench/run: BullMQ (Node) and Sidekiq (Ruby).
#
#   bench/setup_ext.sh                 # both
#   bench/setup_ext.sh bullmq          # only the named one
#
# bullmq: `npm ci` from bullmq/package-lock.json (bullmq and ioredis, exact
#   pins) into bench/bullmq/node_modules; Debian's nodejs and npm when node is
#   missing. Redone only when the lock file changes.
# sidekiq: Debian's ruby-sidekiq (Sidekiq 6.4 with redis-rb and
#   connection_pool), with apt.
#
# One that cannot be installed leaves its reason in .venvs/<name>.unavailable
# (bench/run then reports its configurations as "n/a (<reason>)") and the
# other is still set up; exit status: how many failed. Like the Python peers,
# none of this is a dependency of the project.
set -uo pipefail
BENCH="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=../scripts/_env.sh
source "$BENCH/../scripts/_env.sh"
set +e
mkdir -p "$BENCH/.venvs"

# Prints why BullMQ cannot run, or nothing when it can.
setup_bullmq() {
  local dir="$BENCH/bullmq" stamp="$BENCH/.venvs/bullmq.lock.sha1" want
  if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
    apt_install nodejs npm >&2
  fi
  command -v node >/dev/null || { echo "node is not installed (apt-get install nodejs failed)"; return; }
  command -v npm >/dev/null || { echo "npm is not installed (apt-get install npm failed)"; return; }
  want="$(sha1sum "$dir/package-lock.json" | cut -d' ' -f1)"
  if [[ -f "$dir/node_modules/bullmq/package.json" && -f "$stamp" && "$(cat "$stamp")" == "$want" ]]; then
    return
  fi
  say "bench: npm ci of bullmq and ioredis into bench/bullmq/node_modules ($(node --version))"
  if ! (cd "$dir" && npm ci --no-audit --no-fund --loglevel=error >&2); then
    rm -rf "$dir/node_modules"
    echo "npm ci of bench/bullmq/package-lock.json failed (no registry?)"
    return
  fi
  echo "$want" >"$stamp"
}

setup_sidekiq() {
  if ! command -v sidekiq >/dev/null; then
    apt_install ruby-sidekiq >&2
  fi
  command -v sidekiq >/dev/null || { echo "ruby-sidekiq could not be installed with apt-get"; return; }
  ruby -e 'require "sidekiq"; require "redis"; require "connection_pool"' >&2 \
    || echo "ruby cannot load sidekiq, redis and connection_pool"
}

names=("$@")
[[ ${#names[@]} -gt 0 ]] || names=(bullmq sidekiq)
failed=0
for name in "${names[@]}"; do
  marker="$BENCH/.venvs/$name.unavailable"
  why="$("setup_$name")"
  if [[ -n "$why" ]]; then
    echo "$why" >"$marker"
    echo "bench $name: $why; its configurations will be n/a" >&2
    failed=$((failed + 1))
  else
    rm -f "$marker"
  fi
done
exit "$failed"
