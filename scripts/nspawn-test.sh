#!/usr/bin/env bash
# systemd as PID 1: boots a Debian bookworm rootfs (mmdebstrap, cached under
# $CREDSIDECAR_CI_CACHE, default /var/cache/credsidecar-ci, keyed by
# $rootfs_version) with systemd-nspawn, installs the project's own
# systemd/credsidecar.service and scripts/nspawn/{config.yaml,billing.service}
# in it, and checks (as root):
#  - credsidecar.service starts as Type=notify (start returns once READY=1),
#    pings the watchdog, runs as a DynamicUser, survives `systemctl reload`;
#  - billing.service, an unmodified aws-sdk-go-v2 program, gets the billing
#    role by its unit name (its session is named billing.service);
#  - the same program started by hand (outside that unit) and under another
#    unit (systemd-run) is refused.
# The rootfs is read-only under --volatile=overlay: a warm run takes seconds.
# Skips (exit 0) only when it cannot run; with CI=true that is a failure.
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$(pwd)
t0=$(date +%s.%N)
since() { awk -v a="$1" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }'; }
log() { printf 'nspawn-test [%5ss] %s\n' "$(since "$t0")" "$*"; }
die() { log "FAIL: $*"; exit 1; }
skip() {
  if [ "${CI:-}" = true ]; then die "would skip, but CI=true: $*"; fi
  log "SKIP: $*"; exit 0
}
[ "$(id -u)" = 0 ] || skip "not root"
for c in mmdebstrap systemd-nspawn nsenter; do command -v "$c" >/dev/null || skip "$c is not installed"; done

rootfs_version=bookworm-minbase-systemd-procps-1
cache=${CREDSIDECAR_CI_CACHE:-/var/cache/credsidecar-ci}
rootfs="$cache/rootfs-$rootfs_version"
if [ ! -e "$rootfs/.complete" ]; then
  log "building the rootfs $rootfs (cold: about 30 s)"
  mkdir -p "$cache"
  rm -rf "$rootfs.tmp"
  mmdebstrap --quiet --variant=minbase --include=systemd,dbus,libnss-systemd,procps bookworm "$rootfs.tmp" \
    >"$cache/mmdebstrap.log" 2>&1 || { tail -n 20 "$cache/mmdebstrap.log"; die "mmdebstrap failed"; }
  touch "$rootfs.tmp/.complete"
  rm -rf "$rootfs"
  mv "$rootfs.tmp" "$rootfs"
fi
log "rootfs ready"

work=$(mktemp -d /tmp/credsidecar-nspawn.XXXXXX)
nspawn_pid=""
cg=""
cleanup() {
  local rc=$?
  set +e
  [ "$rc" -ne 0 ] && [ -n "${NSPAWN_DEBUG:-}" ] && { log "NSPAWN_DEBUG: leader $leader, pausing"; sleep 600; }
  if [ -n "$nspawn_pid" ]; then
    [ "$rc" -ne 0 ] && [ -n "${leader:-}" ] && { log "journal:"; inside journalctl --no-pager -n 60; }
    kill -TERM "$nspawn_pid" 2>/dev/null # nspawn asks the container's systemd to power off
    for _ in $(seq 1 100); do kill -0 "$nspawn_pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$nspawn_pid" 2>/dev/null
    wait "$nspawn_pid" 2>/dev/null
  fi
  [ -n "$cg" ] && [ -d "$cgroot/$cg" ] && find "$cgroot/$cg" -depth -type d -exec rmdir {} + 2>/dev/null
  rm -rf "$work"
  exit "$rc"
}
trap cleanup EXIT

log "building credsidecar and the SDK client"
CGO_ENABLED=0 go build -trimpath -o "$work/credsidecar" ./cmd/credsidecar
CGO_ENABLED=0 go build -trimpath -o "$work/sdkcaller" ./scripts/nspawn/sdkcaller

# The host's PID 1 is not systemd: nspawn gets a cgroup of its own in the
# hierarchy systemd tracks processes by (v1 name=systemd, else v2), named
# as systemd would name a machine's scope.
cg="machine.slice/csci-nspawn-$$.scope"
cgroot=/sys/fs/cgroup/systemd
[ -e "$cgroot/cgroup.procs" ] || cgroot=/sys/fs/cgroup
(
  mkdir -p "$cgroot/$cg" && echo "$BASHPID" >"$cgroot/$cg/cgroup.procs"
  exec systemd-nspawn --quiet --boot --private-network --register=no --keep-unit --console=pipe \
    --volatile=overlay -D "$rootfs" -M csci \
    --bind-ro="$work/credsidecar:/usr/local/bin/credsidecar" \
    --bind-ro="$work/sdkcaller:/usr/local/bin/sdkcaller" \
    --bind-ro="$repo/scripts/nspawn/config.yaml:/etc/credsidecar/config.yaml" \
    --bind-ro="$repo/systemd/credsidecar.service:/etc/systemd/system/credsidecar.service" \
    --bind-ro="$repo/scripts/nspawn/billing.service:/etc/systemd/system/billing.service"
) >"$work/console.log" 2>&1 </dev/null &
nspawn_pid=$!

leader=""
for _ in $(seq 1 100); do
  for p in $(ps -o pid= --ppid "$nspawn_pid" 2>/dev/null); do
    [ "$(cat /proc/$p/comm 2>/dev/null)" = systemd ] && leader=$p
  done
  [ -n "$leader" ] && break
  kill -0 "$nspawn_pid" 2>/dev/null || break
  sleep 0.1
done
[ -n "$leader" ] || { cat "$work/console.log"; die "the container's systemd did not start"; }
inside() { nsenter -t "$leader" -a "$@"; }
state=""
# Until the manager answers on its bus (then it waits itself). Before
# systemd has made /run/systemd/system, systemctl says "offline" (its
# sd_booted() test): on a loaded machine the first attempts can see that.
for _ in $(seq 1 300); do
  state=$(timeout 60 nsenter -t "$leader" -a systemctl is-system-running --wait 2>&1 || true)
  case "$state" in *"Failed to connect"*|*"No such file"*|offline) sleep 0.1 ;; *) break ;; esac
done
log "booted: $state (leader pid $leader)"
case "$state" in running|degraded) ;; *) die "the container did not boot: $state";; esac

# --- credsidecar.service: Type=notify, DynamicUser, watchdog, reload -----------
inside systemctl daemon-reload
t=$(date +%s.%N)
inside systemctl start credsidecar.service || die "credsidecar.service did not start"
log "credsidecar.service started (Type=notify: start returned after READY=1, $(since "$t")s)"
[ "$(inside systemctl show -P ActiveState credsidecar.service)" = active ] || die "credsidecar.service is not active"
main=$(inside systemctl show -P MainPID credsidecar.service)
uid=$(inside awk '/^Uid:/ {print $2}' "/proc/$main/status")
[ "$uid" != 0 ] || die "credsidecar runs as root"
log "runs as DynamicUser uid $uid"
for _ in $(seq 1 40); do
  [ "$(inside systemctl show -P WatchdogTimestampMonotonic credsidecar.service)" != 0 ] && break
  sleep 0.25
done
[ "$(inside systemctl show -P WatchdogTimestampMonotonic credsidecar.service)" != 0 ] || die "no watchdog ping"
log "watchdog pinged ($(inside systemctl show -P WatchdogUSec credsidecar.service))"
inside systemctl reload credsidecar.service || die "systemctl reload failed"
[ "$(inside systemctl show -P MainPID credsidecar.service)" = "$main" ] || die "reload restarted the daemon"
inside journalctl --no-pager -u credsidecar.service | grep -q 'process attestation ready' || die "process attestation did not start"
inside journalctl --no-pager -u credsidecar.service | grep -i 'process attestation' | sed 's/^/  /'
log "reload ok (same MainPID $main)"

# --- billing.service: recognised by its unit ------------------------------------
inside systemctl start billing.service || { inside journalctl --no-pager -u billing.service; die "billing.service failed"; }
arn=$(inside journalctl --no-pager -o cat -u billing.service | grep -m1 '^arn:')
log "billing.service is $arn"
[[ "$arn" == arn:aws:sts::000000000000:assumed-role/billing/billing.service ]] || die "billing.service got $arn"

# --- impostors: by hand, and as another unit --------------------------------------
env=(AWS_EC2_METADATA_SERVICE_ENDPOINT=http://127.0.0.1:8169/ AWS_ENDPOINT_URL_STS=http://127.0.0.1:8171 AWS_REGION=us-east-1 AWS_EC2_METADATA_SERVICE_ENDPOINT_MODE=IPv4)
# env -i: nothing of this script's environment (AWS_CA_BUNDLE, proxies, …)
# reaches the client; the refusal must be the sidecar's 403.
if out=$(inside env -i PATH=/usr/bin:/bin "${env[@]}" /usr/local/bin/sdkcaller 2>&1); then die "started by hand, the client got $out"; fi
grep -q 'StatusCode: 403' <<<"$out" || die "started by hand, the client failed otherwise: $out"
log "by hand: refused with 403"
if out=$(inside systemd-run --quiet --wait --pipe --unit=billing-impostor.service $(printf -- '-E %s ' "${env[@]}") /usr/local/bin/sdkcaller 2>&1); then
  die "as billing-impostor.service, the client got $out"
fi
grep -q 'StatusCode: 403' <<<"$out" || die "as billing-impostor.service, the client failed otherwise: $out"
log "as billing-impostor.service: refused with 403"
inside journalctl --no-pager -u credsidecar.service -o cat | grep -c '"credentials issued"' | sed 's/^/  credentials issued: /'
log "PASS"
