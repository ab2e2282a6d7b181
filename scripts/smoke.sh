#!/usr/bin/env bash
# Runs the README's serve command verbatim (extracted from README.md, so the
# two cannot drift) and fetches credentials from it with curl, as a newcomer
# would: IMDSv2 through the token, and the ECS endpoint with the demo token.
set -euo pipefail
cd "$(dirname "$0")/.."
cmd=$(grep -m1 -E '^go run \./cmd/credsidecar serve' README.md)
[ -n "$cmd" ] || { echo "smoke: README has no serve command"; exit 1; }
echo "smoke: running: $cmd"
log=$(mktemp)
# Its own process group, so that stopping it stops the binary `go run` started.
setsid bash -c "exec $cmd" >"$log" 2>&1 &
pid=$!
trap 'kill -TERM -- -$pid 2>/dev/null || true; wait $pid 2>/dev/null || true; rm -f "$log"' EXIT
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
