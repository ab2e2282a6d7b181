#!/usr/bin/env bash
# Verifies systemd/*.service with `systemd-analyze verify` (any output is a
# failure: verify exits 0 on unknown keys and only prints them) and prints
# `systemd-analyze security --offline` scores, failing above MAX_EXPOSURE.
# Works without systemd as PID 1 (containers, CI): the units are copied to a
# temporary directory, and when /usr/local/bin/credsidecar does not exist the
# copies point ExecStart at a stand-in executable, because verify refuses a
# unit whose command is missing. Installs the `systemd` package when
# systemd-analyze is missing.
set -euo pipefail
cd "$(dirname "$0")/.."
MAX_EXPOSURE=${MAX_EXPOSURE:-2.5}
units=(systemd/credsidecar.service systemd/credsidecar-linklocal.service)
bin=/usr/local/bin/credsidecar

if ! command -v systemd-analyze >/dev/null; then
  echo "verify-systemd: installing systemd (for systemd-analyze)"
  export DEBIAN_FRONTEND=noninteractive
  apt-get -o DPkg::Lock::Timeout=300 update -qq
  apt-get -o DPkg::Lock::Timeout=300 install -y -qq --no-install-recommends systemd >/dev/null
fi

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
for u in "${units[@]}"; do cp "$u" "$tmp/"; done
if [ ! -x "$bin" ]; then
  printf '#!/bin/sh\nexit 0\n' >"$tmp/credsidecar"
  chmod 0755 "$tmp/credsidecar"
  sed -i "s|$bin|$tmp/credsidecar|g" "$tmp"/*.service
  echo "verify-systemd: $bin is not installed; verifying with ExecStart pointed at a stand-in"
fi

fail=0
for u in "${units[@]}"; do
  f="$tmp/$(basename "$u")"
  # --man=no: Documentation= is a URL, not a man page. Generators are not
  # needed for a unit file's own correctness and fail without systemd as PID 1.
  out=$(systemd-analyze verify --man=no --generators=no "$f" 2>&1) && rc=0 || rc=$?
  if [ "$rc" -ne 0 ] || [ -n "$out" ]; then
    echo "verify-systemd: $u: systemd-analyze verify exited $rc:"
    printf '%s\n' "$out"
    fail=1
    continue
  fi
  score=$(systemd-analyze security --offline=yes "$f" 2>&1 | sed -n 's/.*Overall exposure level for [^:]*: \([0-9.]*\).*/\1/p')
  if [ -z "$score" ]; then
    echo "verify-systemd: $u: no exposure score from systemd-analyze security"
    fail=1
  elif awk -v s="$score" -v m="$MAX_EXPOSURE" 'BEGIN { exit !(s > m) }'; then
    echo "verify-systemd: $u: exposure $score is above $MAX_EXPOSURE"
    systemd-analyze security --offline=yes "$f" 2>&1 | grep '✗' || true
    fail=1
  else
    echo "verify-systemd: $u: ok (exposure $score)"
  fi
done
exit "$fail"
