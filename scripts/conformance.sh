#!/usr/bin/env bash
# Multi-SDK conformance: gets credentials from a running `credsidecar serve`
# through the unmodified default credential chain of the AWS CLI, boto3/
# botocore, the AWS SDK for JavaScript v3 and aws-sdk-go-v2, over IMDS
# (AWS_EC2_METADATA_SERVICE_ENDPOINT, with imds.tokens at its default,
# required) and over the ECS full URI with a bearer token, and checks each key
# id against what the sidecar serves that caller (fetched with curl from the
# same endpoint). Then checks that each SDK picks up renewed credentials after
# a 1-minute session rolls over. Installs missing clients itself (apt-get,
# npm into scripts/conformance/.cache). Prints "N passed, M failed"; exits 1
# when M > 0. Takes about 3 to 5 minutes.
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$PWD
here=$repo/scripts/conformance
cache=$here/.cache

passed=0
failed=0
failures=()
pass() { passed=$((passed + 1)); printf '  PASS %s\n' "$1"; }
fail() { failed=$((failed + 1)); failures+=("$1"); printf '  FAIL %s\n' "$1"; }
say() { printf '%s\n' "$*"; }
step() { printf '\n== %s\n' "$*"; }

tmp=$(mktemp -d "${TMPDIR:-/tmp}/credsidecar-conformance.XXXXXX")
pids=()
cleanup() {
  local p
  for p in "${pids[@]}"; do
    kill -TERM "$p" 2>/dev/null || true
  done
  for p in "${pids[@]}"; do
    wait "$p" 2>/dev/null || true
  done
  rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ---------------------------------------------------------------- clients
step "clients"
apt_pkgs=()
# Debian's clients, by absolute path: whatever else is on PATH (pyenv, pip)
# is not what this checks.
[ -x /usr/bin/aws ] || apt_pkgs+=(awscli)
/usr/bin/python3 -c 'import boto3' 2>/dev/null || apt_pkgs+=(python3-boto3)
command -v curl >/dev/null || apt_pkgs+=(curl)
command -v node >/dev/null || apt_pkgs+=(nodejs)
command -v npm >/dev/null || apt_pkgs+=(npm)
if [ ${#apt_pkgs[@]} -gt 0 ]; then
  say "installing ${apt_pkgs[*]} (apt-get)"
  sudo_cmd=()
  [ "$(id -u)" = 0 ] || sudo_cmd=(sudo)
  "${sudo_cmd[@]}" apt-get update -qq
  DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq "${apt_pkgs[@]}" >/dev/null
fi
AWS=/usr/bin/aws
PY=/usr/bin/python3
NODE=$(command -v node)
CURL=$(command -v curl)
if [ ! -d "$cache/node_modules/@aws-sdk/credential-providers" ]; then
  say "installing @aws-sdk/credential-providers (npm, into $cache)"
  mkdir -p "$cache"
  [ -f "$cache/package.json" ] || printf '{"private":true}\n' >"$cache/package.json"
  npm install --prefix "$cache" --no-audit --no-fund --loglevel=error @aws-sdk/credential-providers >/dev/null
fi
say "building credsidecar and the aws-sdk-go-v2 client"
CGO_ENABLED=0 go build -o "$tmp/credsidecar" ./cmd/credsidecar
(cd "$here/gosdk" && CGO_ENABLED=0 go build -o "$tmp/gosdk" .)

aws_version=$("$AWS" --version 2>&1 | awk '{print $1}')
botocore_version=$("$PY" -c 'import botocore; print(botocore.__version__)')
js_version=$("$NODE" -p "require('$cache/node_modules/@aws-sdk/credential-providers/package.json').version")
go_version=$(cd "$here/gosdk" && go list -m -f '{{.Version}}' github.com/aws/aws-sdk-go-v2/config)
say "AWS CLI:        $aws_version ($AWS)"
say "boto3/botocore: botocore $botocore_version ($PY)"
say "JS v3:          @aws-sdk/credential-providers $js_version (node $("$NODE" --version))"
say "Go v2:          github.com/aws/aws-sdk-go-v2/config $go_version"

# Does a Python client's botocore read AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE?
# Feature-tested in its source (support came with botocore 1.33 / CLI 2.14;
# Debian bookworm ships botocore 1.29 and CLI 2.9).
supports_token_file() { # python-binary module
  local dir
  dir=$("$1" -c "import $2, os; print(os.path.dirname($2.__file__))" 2>/dev/null) || return 1
  grep -rqs --include=credentials.py AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE "$dir"
}
aws_py=$(head -1 "$AWS" | sed -n 's/^#! *//p' | awk '{print $1}')
aws_file=no
if [ -n "$aws_py" ] && supports_token_file "$aws_py" awscli; then aws_file=yes; fi
boto_file=no
if supports_token_file "$PY" botocore; then boto_file=yes; fi
# Older botocore (the AWS CLI 2.9's own copy) appends "latest/api/token" to
# AWS_EC2_METADATA_SERVICE_ENDPOINT with no separator; newer ones add the
# slash themselves (IMDSFetcher._construct_url).
aws_slash=yes
if [ -n "$aws_py" ] && aws_dir=$("$aws_py" -c 'import awscli, os; print(os.path.dirname(awscli.__file__))' 2>/dev/null); then
  if grep -rqs --include=utils.py 'def _construct_url' "$aws_dir"; then aws_slash=no; fi
  if [ ! -d "$aws_dir/botocore" ] && "$aws_py" -c 'import botocore.utils as u; assert hasattr(u.IMDSFetcher, "_construct_url")' 2>/dev/null; then aws_slash=no; fi
fi

# ---------------------------------------------------------------- sidecars
# main: the checks against a known key (1 h sessions, so nothing rolls over
# while they run). rollover: the same callers, every session 1 minute.
token_main=conformance-token-main-$RANDOM$RANDOM
token_roll=conformance-token-roll-$RANDOM$RANDOM
write_config() { # file role duration token
  cat >"$1" <<EOF
# imds.tokens is left at its default: required (IMDSv2 only).
listen: ["127.0.0.1:0"]
admin_listen: "127.0.0.1:0"
region: us-east-1
sts:
  mode: local
  max_qps: 1000
  local:
    listen: "127.0.0.1:0"
    account_id: "000000000000"
    caller: credsidecar
roles:
  - name: $2
    arn: arn:aws:iam::000000000000:role/$2
    duration: $3
    session_name: "conformance-{{.Client}}"
clients:
  - name: ecs-token
    match: { token: $4 }
    roles: [$2]
  - name: loopback
    match: { source_cidrs: ["127.0.0.1/32"] }
    roles: [$2]
EOF
}

start_sidecar() { # name config -> sets base_<name> admin_<name>
  local name=$1 log=$tmp/$1.log i line
  "$tmp/credsidecar" serve --config "$2" >"$log" 2>&1 &
  pids+=($!)
  for i in $(seq 1 200); do
    line=$(grep -m1 '"credsidecar serving"' "$log" || true)
    [ -n "$line" ] && break
    kill -0 "${pids[-1]}" 2>/dev/null || { cat "$log"; echo "conformance: sidecar $name exited"; exit 1; }
    sleep 0.1
  done
  [ -n "$line" ] || { cat "$log"; echo "conformance: sidecar $name did not start"; exit 1; }
  printf -v "base_$name" 'http://%s' "$(sed -E 's/.*"listen":\["([^"]+)".*/\1/' <<<"$line")"
  printf -v "admin_$name" 'http://%s' "$(sed -E 's/.*"admin_listen":"([^"]+)".*/\1/' <<<"$line")"
}

step "sidecars"
write_config "$tmp/main.yaml" app 1h "$token_main"
write_config "$tmp/roll.yaml" short 1m "$token_roll"
start_sidecar main "$tmp/main.yaml"
start_sidecar roll "$tmp/roll.yaml"
say "main:     $base_main (role app, 1h sessions)"
say "rollover: $base_roll (role short, 1m sessions)"
printf '%s' "$token_main" >"$tmp/token-main"
printf '%s' "$token_roll" >"$tmp/token-roll"
chmod 600 "$tmp/token-main" "$tmp/token-roll"

# The reference: what the sidecar serves, fetched with curl, as each SDK
# would (IMDSv2 token, role list, role; or the ECS path with the token).
ref_imds() { # base
  local t r
  t=$("$CURL" -sf -X PUT -H 'X-aws-ec2-metadata-token-ttl-seconds: 60' "$1/latest/api/token")
  r=$("$CURL" -sf -H "X-aws-ec2-metadata-token: $t" "$1/latest/meta-data/iam/security-credentials/")
  "$CURL" -sf -H "X-aws-ec2-metadata-token: $t" "$1/latest/meta-data/iam/security-credentials/$r" |
    sed -nE 's/.*"AccessKeyId": *"([^"]+)".*/\1/p'
}
ref_ecs() { # base token
  "$CURL" -sf -H "Authorization: $2" "$1/creds" | sed -nE 's/.*"AccessKeyId": *"([^"]+)".*/\1/p'
}
# The same as commands the rollover clients run themselves.
for kind in imds ecs; do
  {
    echo '#!/usr/bin/env bash'
    echo 'set -euo pipefail'
    declare -f ref_imds ref_ecs
    echo "CURL=$CURL"
    if [ $kind = imds ]; then echo "ref_imds $base_roll"; else echo "ref_ecs $base_roll $token_roll"; fi
  } >"$tmp/refkey-$kind"
  chmod 700 "$tmp/refkey-$kind"
done

# IMDSv2 token responses the sidecar has served (from its metrics).
token_count() {
  "$CURL" -sf "$admin_main/metrics" |
    awk '/^credsidecar_credential_requests_total\{/ && /endpoint="imds_token"/ && /code="200"/ {n += $NF} END {print n + 0}'
}

# ---------------------------------------------------------------- runners
# Every SDK runs in a clean environment: nothing but PATH, a HOME of its own,
# shared config files that are empty, and the variables of the check.
mkdir -p "$tmp/home"
clean() {
  env -i PATH=/usr/bin:/bin HOME="$tmp/home" LANG=C.UTF-8 \
    AWS_CONFIG_FILE=/dev/null AWS_SHARED_CREDENTIALS_FILE=/dev/null "$@"
}
# The AWS CLI v2's own botocore (2.9) appends "latest/api/token" to the
# endpoint without a separator: it needs the trailing slash.
imds_env() { # base sdk
  if [ "$2" = cli ] && [ "$aws_slash" = yes ]; then echo "AWS_EC2_METADATA_SERVICE_ENDPOINT=$1/"; else echo "AWS_EC2_METADATA_SERVICE_ENDPOINT=$1"; fi
}
# ecs_env base tokenfile token usefile
ecs_env() {
  echo "AWS_CONTAINER_CREDENTIALS_FULL_URI=$1/creds"
  if [ "$4" = yes ]; then
    echo "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE=$2"
  else
    echo "AWS_CONTAINER_AUTHORIZATION_TOKEN=$3"
  fi
}
# sdk_cmd sdk [rollover refkey]: the command that prints a key id (or the
# rollover lines) through that SDK's default chain.
sdk_cmd() {
  case $1 in
  cli) echo "$AWS configure export-credentials --format process" ;;
  boto) echo "$PY $here/botocore_sdk.py ${2:+rollover $3}" ;;
  js) echo "env NODE_PATH=$cache/node_modules $NODE $here/jssdk.cjs ${2:+rollover $3}" ;;
  go) echo "$tmp/gosdk ${2:+-rollover $3}" ;;
  esac
}
sdk_name() {
  case $1 in
  cli) echo "AWS CLI $aws_version" ;;
  boto) echo "botocore $botocore_version" ;;
  js) echo "JS v3 $js_version" ;;
  go) echo "Go v2 $go_version" ;;
  esac
}
uses_file() {
  case $1 in
  cli) echo $aws_file ;;
  boto) echo $boto_file ;;
  *) echo yes ;;
  esac
}
key_of() { # output of an sdk_cmd: a bare key id, or credential_process JSON
  sed -nE 's/.*"AccessKeyId": *"([^"]+)".*/\1/p; /^[A-Z0-9]{16,128}$/p' | head -1
}

if [ "$aws_slash" = yes ]; then
  say "note: $(sdk_name cli) gets AWS_EC2_METADATA_SERVICE_ENDPOINT with a trailing slash: its botocore appends \"latest/api/token\" with no separator"
fi
for sdk in cli boto; do
  if [ "$(uses_file $sdk)" = no ]; then
    say "note: $(sdk_name $sdk) predates AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE: it gets AWS_CONTAINER_AUTHORIZATION_TOKEN instead (and its full URI uses 127.0.0.1, the only kind of host it allows besides localhost)"
  fi
done

# ---------------------------------------------------------------- checks
step "token-less IMDS GET (imds.tokens: required, the default)"
code=$("$CURL" -s -o /dev/null -w '%{http_code}' "$base_main/latest/meta-data/iam/security-credentials/")
if [ "$code" = 401 ]; then pass "sidecar: IMDSv1 GET refused with 401"; else fail "sidecar: IMDSv1 GET answered $code, want 401"; fi

want_imds=$(ref_imds "$base_main")
want_ecs=$(ref_ecs "$base_main" "$token_main")
say "the sidecar serves: IMDS caller 127.0.0.1 -> $want_imds, ECS token caller -> $want_ecs"

step "IMDS (AWS_EC2_METADATA_SERVICE_ENDPOINT=$base_main)"
for sdk in cli boto js go; do
  name=$(sdk_name $sdk)
  before=$(token_count)
  # shellcheck disable=SC2046
  if out=$(clean $(imds_env "$base_main" $sdk) $(sdk_cmd $sdk) 2>"$tmp/err"); then :; else
    fail "$name IMDS: exit $?: $(tail -3 "$tmp/err")"
    continue
  fi
  got=$(key_of <<<"$out")
  tokens=$(($(token_count) - before))
  if [ -z "$got" ]; then
    fail "$name IMDS: no key id in: $out $(tail -3 "$tmp/err")"
  elif [ "$got" != "$want_imds" ]; then
    fail "$name IMDS: key id $got, the sidecar serves $want_imds"
  elif [ "$tokens" -lt 1 ]; then
    fail "$name IMDS: got $got without an IMDSv2 token PUT"
  else
    pass "$name IMDS: $got (IMDSv2, $tokens token PUT)"
  fi
done

step "ECS full URI ($base_main/creds) with a bearer token"
for sdk in cli boto js go; do
  name=$(sdk_name $sdk)
  how="token file"
  [ "$(uses_file $sdk)" = yes ] || how="AWS_CONTAINER_AUTHORIZATION_TOKEN (old client)"
  # shellcheck disable=SC2046
  if out=$(clean $(ecs_env "$base_main" "$tmp/token-main" "$token_main" "$(uses_file $sdk)") $(sdk_cmd $sdk) 2>"$tmp/err"); then :; else
    fail "$name ECS ($how): exit $?: $(tail -3 "$tmp/err")"
    continue
  fi
  got=$(key_of <<<"$out")
  if [ -z "$got" ]; then
    fail "$name ECS ($how): no key id in: $out $(tail -3 "$tmp/err")"
  elif [ "$got" != "$want_ecs" ]; then
    fail "$name ECS ($how): key id $got, the sidecar serves $want_ecs"
  else
    pass "$name ECS ($how): $got"
  fi
done

step "rollover: 1-minute sessions, one long-lived client per SDK and endpoint (about 2 minutes)"
say "each client fetches, waits for its SDK's own refresh point, fetches again; the new key id"
say "must differ and be what the sidecar serves (curl just before or just after the second fetch)"
# The AWS CLI is a new process per call (and the expiry it prints for IMDS
# credentials is botocore's postponed one, not the session's): it is run
# again every 5 s until it gets another key.
cli_rollover() { # kind -> rollover lines
  local kind=$1 envs out first second before after start
  if [ "$kind" = imds ]; then envs=$(imds_env "$base_roll" cli); else
    envs=$(ecs_env "$base_roll" "$tmp/token-roll" "$token_roll" "$aws_file")
  fi
  # shellcheck disable=SC2086
  out=$(clean $envs $(sdk_cmd cli))
  first=$(key_of <<<"$out")
  echo "first $first"
  start=$SECONDS
  while :; do
    sleep 5
    before=$("$tmp/refkey-$kind")
    # shellcheck disable=SC2086
    out=$(clean $envs $(sdk_cmd cli))
    second=$(key_of <<<"$out")
    after=$("$tmp/refkey-$kind")
    if [ "$second" != "$first" ] || [ $((SECONDS - start)) -gt 150 ]; then break; fi
  done
  echo "note a new process got another key $((SECONDS - start)) s after the first"
  printf 'before %s\nsecond %s\nafter %s\n' "$before" "$second" "$after"
}
for sdk in cli boto js go; do
  for kind in imds ecs; do
    (
      if [ $sdk = cli ]; then
        cli_rollover $kind
      else
        if [ $kind = imds ]; then envs=$(imds_env "$base_roll" $sdk); else
          envs=$(ecs_env "$base_roll" "$tmp/token-roll" "$token_roll" "$(uses_file $sdk)")
        fi
        # shellcheck disable=SC2046,SC2086
        clean $envs $(sdk_cmd $sdk rollover "$tmp/refkey-$kind")
      fi
    ) >"$tmp/roll-$sdk-$kind.out" 2>"$tmp/roll-$sdk-$kind.err" &
    pids+=($!)
    echo $! >"$tmp/roll-$sdk-$kind.pid"
  done
done
for sdk in cli boto js go; do
  for kind in imds ecs; do
    f=$tmp/roll-$sdk-$kind
    label="$(sdk_name $sdk) rollover via $(tr a-z A-Z <<<$kind)"
    if wait "$(cat "$f.pid")"; then rc=0; else rc=$?; fi
    first=$(sed -n 's/^first //p' "$f.out")
    second=$(sed -n 's/^second //p' "$f.out")
    before=$(sed -n 's/^before //p' "$f.out")
    after=$(sed -n 's/^after //p' "$f.out")
    note=$(sed -n 's/^note //p' "$f.out" | head -1)
    if [ $rc != 0 ]; then
      fail "$label: exit $rc: $(tail -3 "$f.err")"
    elif [ -z "$first" ] || [ -z "$second" ]; then
      fail "$label: no key ids: $(cat "$f.out") $(tail -3 "$f.err")"
    elif [ "$first" = "$second" ]; then
      fail "$label: still $first after the rollover (the sidecar serves $after)"
    elif [ "$second" != "$before" ] && [ "$second" != "$after" ]; then
      fail "$label: $first -> $second, but the sidecar serves $before / $after"
    else
      pass "$label: $first -> $second ($note)"
    fi
  done
done

# ---------------------------------------------------------------- result
step "result"
if ! kill -0 "${pids[0]}" 2>/dev/null || ! kill -0 "${pids[1]}" 2>/dev/null; then
  fail "a sidecar exited during the run"
fi
if grep -q '"level":"\(error\|panic\|fatal\)"' "$tmp/main.log" "$tmp/roll.log"; then
  say "sidecar errors logged:"
  grep -h '"level":"\(error\|panic\|fatal\)"' "$tmp/main.log" "$tmp/roll.log" | head -5
fi
printf '%d passed, %d failed\n' "$passed" "$failed"
for f in "${failures[@]}"; do printf '  failed: %s\n' "$f"; done
[ "$failed" -eq 0 ]
