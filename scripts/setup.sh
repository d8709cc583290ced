#!/usr/bin/env bash
# Everything streamrec needs on a fresh Debian machine: Python 3.11 venv with
# pinned dependencies, the hot path compiled (gcc; STREAMREC_NO_EXTENSIONS=1 skips
# it), a Java runtime and Maven (for the embedded Kafka), the broker jars from
# Maven Central, Prometheus and promtool (for the dashboard test). Idempotent:
# a second run takes a second.
set -euo pipefail
cd "$(dirname "$0")/.."

apt_install() {
  if [ "$(id -u)" != 0 ]; then echo "need root (or sudo) to apt-get install $*" >&2; exit 1; fi
  if [ -z "${_APT_UPDATED:-}" ]; then apt-get update -qq; _APT_UPDATED=1; fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}

PY=${PYTHON:-}
if [ -z "$PY" ]; then
  for c in python3.11 python3; do
    if command -v "$c" >/dev/null && "$c" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))'; then
      PY=$(command -v "$c"); break
    fi
  done
fi
if [ -z "$PY" ]; then apt_install python3.11 python3.11-venv; PY=python3.11; fi
"$PY" -c 'import venv, ensurepip' 2>/dev/null || apt_install python3.11-venv
headers() {
  "$PY" -c 'import os, sys, sysconfig
sys.exit(not os.path.exists(os.path.join(sysconfig.get_paths()["include"], "Python.h")))'
}
if [ -z "${STREAMREC_NO_EXTENSIONS:-}" ]; then
  if [ "$(id -u)" = 0 ]; then
    command -v gcc >/dev/null || apt_install gcc
    headers || apt_install python3.11-dev
  elif ! command -v gcc >/dev/null || ! headers; then
    echo "no gcc or Python headers (and not root): the hot path runs from source," \
      "about 10% slower; STREAMREC_NO_EXTENSIONS=1 silences this" >&2
  fi
fi
command -v java >/dev/null || apt_install default-jre-headless
command -v mvn >/dev/null || apt_install maven
# Prometheus and promtool: the dashboard test scrapes a live worker with them.
command -v prometheus >/dev/null || apt_install prometheus

if [ ! -x .venv/bin/python ]; then "$PY" -m venv .venv; fi
stamp=.venv/.streamrec-installed
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
  echo "installing Python dependencies into .venv (torch is large: the first time takes minutes)"
  .venv/bin/python -m pip install -q --upgrade pip
  .venv/bin/python -m pip install -q --progress-bar off -e '.[dev]'
  touch "$stamp"
fi
# The compiled hot path (setup.py): rebuilds what changed since, else a no-op.
.venv/bin/python setup.py -q build_ext --inplace -j 2
.venv/bin/streamrec broker --fetch-only
