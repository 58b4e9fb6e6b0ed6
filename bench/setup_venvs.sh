#!/usr/bin/env bash
# Creates the peers' virtualenvs under bench/.venvs/ from the pinned requirement
# files (the anchors' pins, ../shared/bench-anchors): the peers are optional
# extras of the benchmark, never dependencies of the project.
#
#   bench/setup_venvs.sh              # peers (Celery, Dramatiq, taskiq, RQ), arq, SAQ, tools
#   bench/setup_venvs.sh saq          # only the named ones
#
# A venv that already has its requirements installed is left alone. One that
# fails to install is removed and reported, and the others are still set up:
# the benchmark then reports that peer as n/a (exit status: how many failed).
# The Python is the project's choice (scripts/_env.sh find_python: $PYTHON,
# python3.1x on PATH, pyenv); the Redis clients' pins clash, hence one venv per
# group: arq needs redis<6, SAQ redis<8, taskiq-redis redis>=8. "tools" holds
# py-spy, for the profile phase.
set -euo pipefail
BENCH="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=../scripts/_env.sh
source "$BENCH/../scripts/_env.sh"

# One venv from requirements-$1.txt; returns non-zero when pip fails.
setup_one() {
  local name=$1 py=$2
  local req="$BENCH/requirements-$name.txt"
  [[ -f "$req" ]] || { echo "no $req" >&2; return 1; }
  local venv="$BENCH/.venvs/$name"
  local stamp="$venv/.requirements.sha1"
  local want
  want="$(sha1sum "$req" | cut -d' ' -f1)"
  if [[ -x "$venv/bin/python" && -f "$stamp" && "$(cat "$stamp")" == "$want" ]]; then
    return 0
  fi
  say "bench venv $name ($("$py" --version)) from requirements-$name.txt"
  rm -rf "$venv"
  "$py" -m venv "$venv" &&
    "$venv/bin/python" -m pip install -q --disable-pip-version-check --upgrade pip &&
    "$venv/bin/python" -m pip install -q --disable-pip-version-check -r "$req" &&
    echo "$want" >"$stamp"
}

names=("$@")
[[ ${#names[@]} -gt 0 ]] || names=(peers arq saq tools)
py="$(find_python)"
failed=0
for name in "${names[@]}"; do
  if ! setup_one "$name" "$py"; then
    echo "bench venv $name: install failed; its configurations will be n/a" >&2
    rm -rf "$BENCH/.venvs/$name"
    failed=$((failed + 1))
  fi
done
exit "$failed"
