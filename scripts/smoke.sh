#!/usr/bin/env bash
# A newcomer's first five minutes, from the README itself (extracted, so the
# two cannot drift):
#  1. its serve command verbatim, then credentials fetched with curl (IMDSv2
#     through the token, the ECS endpoint with the demo token);
#  2. every ```sh block of "Point an SDK at it", "Configuration", "The
#     embedded STS" and "Laptop" (serve lines aside: the daemon runs), each
#     in a fresh shell with an empty HOME and no AWS_* variables, as written;
#     a block that calls `aws` runs once with every distinct AWS CLI on this
#     machine (Debian's 2.9 at /usr/bin/aws, a pip or pyenv CLI v1 on PATH).
# A block fails on a non-zero exit; one that asks get-caller-identity must
# print an assumed-role ARN, one that runs the Go SDK an ASIA key id.
set -euo pipefail
cd "$(dirname "$0")/.."
cmd=$(grep -m1 -E '^go run \./cmd/credsidecar serve' README.md)
[ -n "$cmd" ] || { echo "smoke: README has no serve command"; exit 1; }
echo "smoke: running: $cmd"
work=$(mktemp -d)
log=$work/serve.log
# Its own process group, so that stopping it stops the binary `go run` started.
setsid bash -c "exec $cmd" >"$log" 2>&1 &
pid=$!
trap 'kill -TERM -- -$pid 2>/dev/null || true; wait $pid 2>/dev/null || true; rm -rf "$work"' EXIT
base=http://127.0.0.1:8169
for _ in $(seq 1 120); do
  curl -sf -o /dev/null "http://127.0.0.1:8170/healthz" && break
  kill -0 $pid 2>/dev/null || { cat "$log"; echo "smoke: serve exited"; exit 1; }
  sleep 0.5
done
token=$(curl -sf -X PUT -H 'X-aws-ec2-metadata-token-ttl-seconds: 60' "$base/latest/api/token")
role=$(curl -sf -H "X-aws-ec2-metadata-token: $token" "$base/latest/meta-data/iam/security-credentials/")
creds=$(curl -sf -H "X-aws-ec2-metadata-token: $token" "$base/latest/meta-data/iam/security-credentials/$role")
echo "$creds" | grep -Eq '"AccessKeyId": ?"ASIA' || { echo "smoke: IMDS gave no credentials: $creds"; exit 1; }
ecs=$(curl -sf -H 'Authorization: demo-billing-token' "$base/creds")
echo "$ecs" | grep -q '"AccessKeyId":"ASIA' || { echo "smoke: ECS endpoint gave no credentials: $ecs"; exit 1; }
code=$(curl -s -o /dev/null -w '%{http_code}' "$base/latest/meta-data/iam/security-credentials/$role")
[ "$code" = 401 ] || { echo "smoke: token-less GET answered $code, want 401"; exit 1; }
echo "smoke: ok (IMDS role $role and the ECS endpoint served credentials)"

# ------------------------------------------------------ the README's blocks
mkdir "$work/blocks"
awk -v dir="$work/blocks" '
  /^##+ / { sec = $0; sub(/^#+ /, "", sec) }
  /^```sh$/ && sec ~ /^(Point an SDK at it|Configuration|The embedded STS|Laptop)/ {
    n++; f = sprintf("%s/%02d.sh", dir, n); inblock = 1; printf "" > f; next
  }
  /^```$/ && inblock { inblock = 0; close(f); next }
  inblock && !/(^| )serve( |$)/ { print > f }
' README.md
nblocks=$(ls "$work/blocks" | wc -l)
[ "$nblocks" -ge 8 ] || { echo "smoke: found only $nblocks README blocks to run"; exit 1; }

# Every distinct AWS CLI: Debian's, and whatever `aws` is on PATH.
clis=()
seen=""
for c in /usr/bin/aws $(type -ap aws 2>/dev/null || true); do
  [ -x "$c" ] || continue
  v=$("$c" --version 2>&1 | head -1) || continue
  case "$seen" in *"|$v|"*) continue ;; esac
  seen="$seen|$v|"
  clis+=("$c")
  echo "smoke: AWS CLI $c: $v"
done
[ ${#clis[@]} -gt 0 ] || { echo "smoke: no AWS CLI found (apt-get install awscli)"; exit 1; }

# The shells below get an empty HOME: keep the Go and pyenv state of this one.
export GOCACHE="$(go env GOCACHE)" GOMODCACHE="$(go env GOMODCACHE)" GOPATH="$(go env GOPATH)" GOENV="$(go env GOENV)"
export PYENV_ROOT="${PYENV_ROOT:-$HOME/.pyenv}"
awsvars=$(env | sed -n 's/^\(AWS_[A-Za-z0-9_]*\)=.*/\1/p')

run_block() { # block file, AWS CLI ("" for none)
  local b=$1 cli=$2 home out
  home=$(mktemp -d "$work/home.XXXX")
  mkdir -p "$home/bin"
  [ -z "$cli" ] || ln -s "$cli" "$home/bin/aws"
  # shellcheck disable=SC2086
  if ! out=$(env -u CREDSIDECAR_CONFIG $(printf -- '-u %s ' $awsvars) HOME="$home" \
      PATH="$home/bin:$home/.local/bin:$PATH" bash -euo pipefail "$b" 2>&1); then
    echo "smoke: README block failed${cli:+ with $cli}:"; sed 's/^/    /' "$b"; echo "  output:"; echo "$out" | sed 's/^/    /'
    return 1
  fi
  if grep -q 'get-caller-identity' "$b" && ! grep -q 'assumed-role/' <<<"$out"; then
    echo "smoke: README block${cli:+ with $cli} printed no assumed-role ARN:"; sed 's/^/    /' "$b"; echo "$out" | sed 's/^/    /'
    return 1
  fi
  if grep -q 'gosdk' "$b" && ! grep -q '^ASIA' <<<"$out"; then
    echo "smoke: the Go SDK block printed no key id:"; echo "$out" | sed 's/^/    /'
    return 1
  fi
  echo "smoke: ok: $(head -c 70 "$b" | head -1)…${cli:+ ($cli)}"
}

# The Laptop build goes first in its own block: later blocks use its binary
# from the HOME it was built into, so give every shell that binary.
go build -o "$work/credsidecar" ./cmd/credsidecar
failed=0
for b in "$work"/blocks/*.sh; do
  if grep -q '~/.local/bin/credsidecar' "$b"; then
    run_block "$b" "" || failed=1
    continue
  fi
  # Blocks that use the installed binary find it where the Laptop build put it.
  if grep -qE '(^|[^/])credsidecar (exec|creds)' "$b"; then
    mkdir -p "$work/shared-bin" && cp "$work/credsidecar" "$work/shared-bin/credsidecar"
  fi
  if grep -qE '(^|[ (])aws ' "$b"; then
    for cli in "${clis[@]}"; do
      PATH="$work/shared-bin:$PATH" run_block "$b" "$cli" || failed=1
    done
  else
    PATH="$work/shared-bin:$PATH" run_block "$b" "" || failed=1
  fi
done
[ "$failed" = 0 ] || { echo "smoke: some README commands do not work as written"; exit 1; }
echo "smoke: ok (every README block ran with: ${clis[*]})"
