#!/usr/bin/env bash
# The DaemonSet on a real single-node Kubernetes (v1.34.4, built from the Go
# module proxy by scripts/k8s-build.sh, cached outside the clone), with
# Debian's etcd, containerd, runc and CNI plugins. It applies
# deploy/kubernetes/ as a user would (the image references, the API server
# address and the STS mode substituted: no image can be pulled and no AWS
# reached here) and checks, with the AWS SDK's default chain in workload
# pods:
#   - service account A gets role A, and the session carries the
#     namespace/service-account tags (chaining into a role whose trust
#     policy requires aws:PrincipalTag/kubernetes-namespace);
#   - service account B asking for role A gets 404, no token 403, a token
#     for another audience 401;
#   - a ConfigMap edit revokes A within 1 s of the kubelet's ..data swap;
#   - with token_review: true a force-deleted pod's token stops working
#     within the TokenReview cache time.
# Only loopback and link-local addresses: node 169.254.170.1, sidecar
# 169.254.170.2, pods 169.254.200.0/24, services 169.254.201.0/24. Prints
# "N passed, M failed", tears everything down, exits non-zero when M > 0.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
K8S=${K8S_CACHE:-/var/cache/credsidecar-ci/k8s-v1.34.4}
W=${K8S_WORK:-/tmp/csk8s}
NODE=169.254.170.1
SIDECAR=169.254.170.2
NS=credsidecar-test
t0=$(date +%s)
log() { printf '[k8s %3ds] %s\n' "$(( $(date +%s) - t0 ))" "$*"; }

if [ "$(id -u)" != 0 ]; then
  echo "k8s-test: needs root"; exit 1
fi
for b in etcd containerd runc ctr openssl; do
  command -v $b >/dev/null || { echo "k8s-test: $b is missing (apt-get install etcd-server containerd runc containernetworking-plugins openssl busybox-static)"; exit 1; }
done
[ -x /usr/lib/cni/bridge ] || { echo "k8s-test: CNI plugins missing (containernetworking-plugins)"; exit 1; }
dpkg -s busybox-static >/dev/null 2>&1 || { echo "k8s-test: busybox-static missing (a static busybox runs in a FROM-scratch image)"; exit 1; }

log "kubernetes binaries"
scripts/k8s-build.sh "$K8S"
export PATH="$K8S/bin:$PATH"

passed=0 failed=0
check() { # name, then a command whose success is the check
  local name=$1; shift
  if "$@"; then passed=$((passed+1)); log "PASS $name"; else failed=$((failed+1)); log "FAIL $name"; fi
}

# ------------------------------------------------------------------ teardown
sysctls="vm.overcommit_memory vm.panic_on_oom kernel.panic kernel.panic_on_oops kernel.keys.root_maxkeys kernel.keys.root_maxbytes"
declare -A saved
for s in $sysctls; do saved[$s]=$(sysctl -n "$s" 2>/dev/null || true); done
pids=()
had_netns=0; [ -d /var/run/netns ] && had_netns=1
cleanup() {
  set +e
  log "tear-down"
  if [ -S "$W/containerd.sock" ]; then
    for c in $(ctr -a "$W/containerd.sock" -n k8s.io tasks ls -q 2>/dev/null); do ctr -a "$W/containerd.sock" -n k8s.io tasks kill -s KILL "$c" >/dev/null 2>&1; done
  fi
  for ((i=${#pids[@]}-1; i>=0; i--)); do kill "${pids[$i]}" 2>/dev/null; done
  for p in "${pids[@]}"; do
    for _ in $(seq 50); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$p" 2>/dev/null
  done
  # Leftovers of pods: shims, mounts, network namespaces.
  pkill_shims=$(pgrep -f "containerd-shim-runc-v2 -namespace k8s.io -id .* -address $W/containerd.sock" || true)
  for p in $pkill_shims; do kill -9 "$p" 2>/dev/null; done
  grep " $W" /proc/mounts | awk '{print $2}' | sort -r | while read -r m; do umount -l "$m"; done
  for n in /var/run/netns/cni-*; do [ -e "$n" ] && ip netns delete "$(basename "$n")"; done
  ip link del csbr0 2>/dev/null; ip link del cspods0 2>/dev/null
  ip addr del $SIDECAR/32 dev lo 2>/dev/null
  for s in $sysctls; do [ -n "${saved[$s]}" ] && sysctl -qw "$s=${saved[$s]}"; done
  rm -rf "$W" /var/lib/cni/results /var/lib/cni/networks/csk8s
  rmdir /var/lib/cni/networks /var/lib/cni 2>/dev/null
  # containerd 1.6 puts shim sockets and runc state under /run/containerd
  # whatever its config says: ours go unless a system containerd runs.
  rm -rf /run/containerd/runc/k8s.io
  [ -S /run/containerd/containerd.sock ] || rm -rf /run/containerd/s
  rmdir /run/containerd/runc /run/containerd 2>/dev/null
  [ "$had_netns" = 1 ] || { umount /var/run/netns 2>/dev/null; rmdir /var/run/netns 2>/dev/null; }
  log "tear-down done"
}
trap cleanup EXIT
rm -rf "$W"; mkdir -p "$W"/{pki,etcd,cni,ipam,kubelet,images,logs}

# ------------------------------------------------------------------- images
log "images"
CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o "$W/images/credsidecar" ./cmd/credsidecar
CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o "$W/images/pause" ./scripts/k8s/pause
CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o "$W/images/probe" ./scripts/k8s/probe
busybox=$(command -v busybox)
# mkimage NAME:TAG ENTRYPOINT_JSON USER FILE:PATH_IN_IMAGE... -> a docker-archive tar
mkimage() {
  python3 - "$W/images" "$@" <<'PY'
import hashlib, io, json, os, sys, tarfile
out, ref, entry, user, files = sys.argv[1], sys.argv[2], json.loads(sys.argv[3]), sys.argv[4], sys.argv[5:]
layer = io.BytesIO()
with tarfile.open(fileobj=layer, mode="w", format=tarfile.GNU_FORMAT) as t:
    dirs = set()
    for spec in files:
        src, dst = spec.split(":", 1)
        parts = dst.strip("/").split("/")[:-1]
        for i in range(len(parts)):
            d = "/".join(parts[: i + 1])
            if d not in dirs:
                dirs.add(d)
                ti = tarfile.TarInfo(d); ti.type = tarfile.DIRTYPE; ti.mode = 0o755
                t.addfile(ti)
        ti = t.gettarinfo(src, dst.strip("/")); ti.uid = ti.gid = 0; ti.uname = ti.gname = ""; ti.mode = 0o755
        with open(src, "rb") as f:
            t.addfile(ti, f)
    for d in ("tmp", "etc"):
        if d not in dirs:
            ti = tarfile.TarInfo(d); ti.type = tarfile.DIRTYPE; ti.mode = 0o1777 if d == "tmp" else 0o755
            t.addfile(ti)
data = layer.getvalue()
diff = "sha256:" + hashlib.sha256(data).hexdigest()
cfg = json.dumps({"architecture": "amd64", "os": "linux",
    "config": {"Entrypoint": entry, "User": user, "Env": ["PATH=/bin"]},
    "rootfs": {"type": "layers", "diff_ids": [diff]}}).encode()
name = ref.replace("/", "_").replace(":", "_")
with tarfile.open(os.path.join(out, name + ".tar"), "w") as t:
    for n, b in (("layer.tar", data), ("config.json", cfg),
                 ("manifest.json", json.dumps([{"Config": "config.json", "RepoTags": [ref], "Layers": ["layer.tar"]}]).encode())):
        ti = tarfile.TarInfo(n); ti.size = len(b); t.addfile(ti, io.BytesIO(b))
print(os.path.join(out, name + ".tar"))
PY
}
img_sidecar=credsidecar.test/credsidecar:ci
img_pause=credsidecar.test/pause:ci
img_probe=credsidecar.test/probe:ci
img_busybox=credsidecar.test/busybox:ci
tars=(
  "$(mkimage $img_sidecar '["/credsidecar"]' 65532:65532 "$W/images/credsidecar:/credsidecar" /etc/ssl/certs/ca-certificates.crt:/etc/ssl/certs/ca-certificates.crt)"
  "$(mkimage $img_pause '["/pause"]' 65535:65535 "$W/images/pause:/pause")"
  "$(mkimage $img_probe '["/probe"]' 1000:1000 "$W/images/probe:/probe")"
  "$(mkimage $img_busybox '["/bin/sh"]' 0:0 "$busybox:/bin/busybox" "$busybox:/bin/sh" "$busybox:/bin/ip" "$busybox:/bin/grep")"
)

# -------------------------------------------------------------------- PKI
log "certificates"
cd "$W/pki"
openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=csk8s-ca -keyout ca.key -out ca.crt 2>/dev/null
cat >apiserver.ext <<EOF
subjectAltName=IP:127.0.0.1,IP:169.254.201.1,IP:$NODE,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local
EOF
openssl req -newkey rsa:2048 -nodes -subj /CN=kube-apiserver -keyout apiserver.key -out apiserver.csr 2>/dev/null
openssl x509 -req -in apiserver.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 2 -extfile apiserver.ext -out apiserver.crt 2>/dev/null
openssl req -newkey rsa:2048 -nodes -subj "/O=system:masters/CN=admin" -keyout admin.key -out admin.csr 2>/dev/null
openssl x509 -req -in admin.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 2 -out admin.crt 2>/dev/null
openssl genrsa -out sa.key 2048 2>/dev/null
openssl rsa -in sa.key -pubout -out sa.pub 2>/dev/null
cd "$root"
KUBECONFIG=$W/admin.kubeconfig
export KUBECONFIG
cat >"$KUBECONFIG" <<EOF
apiVersion: v1
kind: Config
clusters: [{name: csk8s, cluster: {server: "https://127.0.0.1:6443", certificate-authority: $W/pki/ca.crt}}]
users: [{name: admin, user: {client-certificate: $W/pki/admin.crt, client-key: $W/pki/admin.key}}]
contexts: [{name: csk8s, context: {cluster: csk8s, user: admin}}]
current-context: csk8s
EOF

# ---------------------------------------------------------------- network
log "network"
ip link add csbr0 type bridge && ip link set csbr0 up
ip addr add $NODE/32 dev csbr0
ip link add cspods0 type bridge && ip link set cspods0 up
ip addr add 169.254.200.1/24 dev cspods0
cat >"$W/cni/10-csk8s.conflist" <<EOF
{"cniVersion": "0.4.0", "name": "csk8s", "plugins": [
  {"type": "bridge", "bridge": "cspods0", "isGateway": false, "ipMasq": false,
   "ipam": {"type": "host-local", "dataDir": "$W/ipam", "ranges": [[{"subnet": "169.254.200.0/24", "rangeStart": "169.254.200.10", "gateway": "169.254.200.1"}]],
            "routes": [{"dst": "169.254.0.0/16", "gw": "169.254.200.1"}]}},
  {"type": "loopback"}]}
EOF

# -------------------------------------------------------------- processes
start() { # name, command...
  local name=$1; shift
  "$@" >"$W/logs/$name.log" 2>&1 &
  pids+=($!)
}
wait_for() { # what, seconds, command...
  local what=$1 secs=$2; shift 2
  for _ in $(seq $((secs*10))); do "$@" >/dev/null 2>&1 && return 0; sleep 0.1; done
  log "timed out waiting for $what"; return 1
}
dump_logs() { for f in "$W"/logs/*.log; do echo "--- $f"; tail -n 25 "$f"; done; }

log "etcd, containerd"
start etcd etcd --name csk8s --data-dir "$W/etcd" --listen-client-urls http://127.0.0.1:23790 \
  --advertise-client-urls http://127.0.0.1:23790 --listen-peer-urls http://127.0.0.1:23800 \
  --initial-advertise-peer-urls http://127.0.0.1:23800 --initial-cluster csk8s=http://127.0.0.1:23800
cat >"$W/containerd.toml" <<EOF
version = 2
root = "$W/containerd/root"
state = "$W/containerd/state"
[grpc]
  address = "$W/containerd.sock"
[ttrpc]
  address = "$W/containerd.sock.ttrpc"
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "$img_pause"
  restrict_oom_score_adj = true
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "$W/cni"
  [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
    runtime_type = "io.containerd.runc.v2"
EOF
start containerd containerd --config "$W/containerd.toml"
wait_for containerd 20 ctr -a "$W/containerd.sock" version
for t in "${tars[@]}"; do ctr -a "$W/containerd.sock" -n k8s.io images import --no-unpack=false "$t" >/dev/null; done

log "kube-apiserver"
start apiserver kube-apiserver --etcd-servers=http://127.0.0.1:23790 --bind-address=127.0.0.1 --secure-port=6443 \
  --advertise-address=$NODE --endpoint-reconciler-type=none \
  --tls-cert-file="$W/pki/apiserver.crt" --tls-private-key-file="$W/pki/apiserver.key" --client-ca-file="$W/pki/ca.crt" \
  --service-account-issuer=https://kubernetes.default.svc.cluster.local --service-account-key-file="$W/pki/sa.pub" \
  --service-account-signing-key-file="$W/pki/sa.key" --service-cluster-ip-range=169.254.201.0/24 \
  --authorization-mode=Node,RBAC --allow-privileged=true \
  --kubelet-client-certificate="$W/pki/admin.crt" --kubelet-client-key="$W/pki/admin.key"
wait_for apiserver 60 kubectl get --raw /readyz || { dump_logs; exit 1; }
start controller-manager kube-controller-manager --kubeconfig="$KUBECONFIG" --leader-elect=false --bind-address=127.0.0.1 \
  --service-account-private-key-file="$W/pki/sa.key" --root-ca-file="$W/pki/ca.crt" --controllers='*,-nodeipam'
start scheduler kube-scheduler --kubeconfig="$KUBECONFIG" --leader-elect=false --bind-address=127.0.0.1

log "kubelet"
cat >"$W/kubelet.yaml" <<EOF
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
failCgroupV1: false
cgroupDriver: cgroupfs
oomScoreAdj: 0
address: $NODE
readOnlyPort: 0
authentication: {anonymous: {enabled: false}, webhook: {enabled: false}, x509: {clientCAFile: "$W/pki/ca.crt"}}
authorization: {mode: AlwaysAllow}
failSwapOn: false
containerRuntimeEndpoint: "unix://$W/containerd.sock"
syncFrequency: 10s
evictionHard: {memory.available: "1Mi", nodefs.available: "1%", imagefs.available: "1%", nodefs.inodesFree: "1%"}
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
makeIPTablesUtilChains: false
protectKernelDefaults: false
resolvConf: ""
EOF
start kubelet kubelet --kubeconfig="$KUBECONFIG" --config="$W/kubelet.yaml" --root-dir="$W/kubelet" \
  --cert-dir="$W/kubelet/pki" --hostname-override=$NODE
node_ready() { kubectl get node $NODE -o jsonpath='{.status.conditions[?(@.type=="Ready")].status}' | grep -q True; }
wait_for "node Ready" 90 node_ready || { dump_logs; exit 1; }
log "node Ready"

# ------------------------------------------------- the sidecar, as deployed
sub_images() { sed -e "s#ghcr.io/credsidecar/credsidecar:latest#$img_sidecar#" -e "s#busybox:1.36#$img_busybox#"; }
sa_a="system:serviceaccount:$NS:app-a"
# The shipped ConfigMap with what this machine needs: local STS (no AWS),
# roles of the test, the API server on the host's loopback.
cat >"$W/config.yaml" <<EOF
listen: ["$SIDECAR:8169"]
admin_listen: "127.0.0.1:8170"
region: us-east-1
sts:
  mode: local
  local:
    listen: "$SIDECAR:8171"
identity_providers:
  - name: cluster
    issuer: https://kubernetes.default.svc.cluster.local
    audiences: [credsidecar]
    max_token_lifetime: 24h
    kubernetes:
      api_url: https://127.0.0.1:6443
      ca_file: /var/run/secrets/kubernetes.io/serviceaccount/ca.crt
      bearer_token_file: /var/run/secrets/kubernetes.io/serviceaccount/token
      token_review: true
      node_name: { env: NODE_NAME }
roles:
  - name: role-a
    duration: 15m
    tags:
      kubernetes-namespace: '{{index .Claims "kubernetes.io" "namespace"}}'
      kubernetes-service-account: '{{index .Claims "kubernetes.io" "serviceaccount" "name"}}'
      kubernetes-pod-name: '{{index .Claims "kubernetes.io" "pod" "name"}}'
    transitive_tag_keys: [kubernetes-namespace]
    trust_policy:
      Version: 2012-10-17
      Statement: [{Effect: Allow, Principal: {AWS: "arn:aws:iam::000000000000:user/credsidecar"}, Action: ["sts:AssumeRole", "sts:TagSession"]}]
    permission_policies:
      - {Version: 2012-10-17, Statement: [{Effect: Allow, Action: "sts:AssumeRole", Resource: "*"}]}
  - name: role-b
    duration: 15m
  - name: ns-gated
    duration: 15m
    trust_policy:
      Version: 2012-10-17
      Statement:
        - Effect: Allow
          Principal: {AWS: "arn:aws:iam::000000000000:role/role-a"}
          Action: ["sts:AssumeRole", "sts:TagSession"]
          Condition: {StringEquals: {"aws:PrincipalTag/kubernetes-namespace": "$NS", "aws:PrincipalTag/kubernetes-service-account": "app-a"}}
clients:
  - name: app-a
    match: {jwt: {provider: cluster, subject: "$sa_a"}}
    roles: [role-a]
  - name: app-b
    match: {jwt: {provider: cluster, subject: "system:serviceaccount:$NS:app-b"}}
    roles: [role-b]
EOF
log "deploy/kubernetes"
kubectl apply -f deploy/kubernetes/namespace.yaml >/dev/null
kubectl -n credsidecar create configmap credsidecar-config --from-file=config.yaml="$W/config.yaml" >/dev/null
sub_images <deploy/kubernetes/daemonset.yaml | kubectl apply -f - >/dev/null
sidecar_ready() { [ "$(kubectl -n credsidecar get ds credsidecar -o jsonpath='{.status.numberReady}')" = 1 ]; }
if ! wait_for "sidecar ready" 90 sidecar_ready; then
  kubectl -n credsidecar describe pods | tail -40; kubectl -n credsidecar logs ds/credsidecar --all-containers | tail -40; dump_logs; exit 1
fi
log "sidecar ready"

# ----------------------------------------------------------------- workloads
kubectl create namespace $NS >/dev/null
for sa in app-a app-b; do kubectl -n $NS create serviceaccount $sa >/dev/null; done
pod() { # name sa audience url args...
  local name=$1 sa=$2 aud=$3 url=$4; shift 4
  local vol="" mount="" tokenv=""
  if [ -n "$aud" ]; then
    vol="volumes: [{name: tok, projected: {sources: [{serviceAccountToken: {audience: $aud, expirationSeconds: 600, path: token}}]}}]"
    mount="volumeMounts: [{name: tok, mountPath: /var/run/secrets/credsidecar, readOnly: true}]"
    tokenv="- {name: AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE, value: /var/run/secrets/credsidecar/token}"
  fi
  kubectl apply -f - >/dev/null <<EOF
apiVersion: v1
kind: Pod
metadata: {name: $name, namespace: $NS}
spec:
  serviceAccountName: $sa
  automountServiceAccountToken: false
  restartPolicy: Never
  terminationGracePeriodSeconds: 1
  containers:
    - name: app
      image: $img_probe
      args: [$(printf '"%s",' "$@" | sed 's/,$//')]
      env:
        - {name: AWS_REGION, value: us-east-1}
        - {name: AWS_CONTAINER_CREDENTIALS_FULL_URI, value: "$url"}
        - {name: AWS_ENDPOINT_URL_STS, value: "http://$SIDECAR:8171"}
        $tokenv
      $mount
  $vol
EOF
}
base=http://$SIDECAR:8169
pod sdk-a app-a credsidecar $base/role/role-a sdk arn:aws:iam::000000000000:role/ns-gated
pod b-asks-a app-b credsidecar $base/role/role-a status
pod b-own app-b credsidecar $base/role/role-b status
pod no-token app-a "" $base/role/role-a status
pod other-aud app-a other $base/role/role-a status
pod sleeper-a app-a credsidecar $base/role/role-a sleep
done_pods() { for p in sdk-a b-asks-a b-own no-token other-aud; do
  ph=$(kubectl -n $NS get pod $p -o jsonpath='{.status.phase}'); [ "$ph" = Succeeded ] || [ "$ph" = Failed ] || return 1; done; }
if ! wait_for "workload pods" 90 done_pods; then
  kubectl -n $NS get pods -o wide; kubectl -n $NS describe pods | grep -A12 Events: | head -60; kubectl get node -o yaml | grep -A5 taints
fi
out() { kubectl -n $NS logs "$1" 2>/dev/null; }
log "sdk-a: $(out sdk-a | tr '\n' ' ')"
check "A gets role A through the SDK default chain" grep -q "^caller=arn:aws:sts::000000000000:assumed-role/role-a/app-a@$NS.app-a" <(out sdk-a)
check "A's session carries the namespace/service-account tags (trust policy on aws:PrincipalTag)" grep -q "^chained=arn:aws:sts::000000000000:assumed-role/ns-gated/chained" <(out sdk-a)
check "B asking for role A gets 404" grep -qx "status=404" <(out b-asks-a)
check "B gets its own role" grep -qx "status=200" <(out b-own)
check "no token gets 403" grep -qx "status=403" <(out no-token)
check "a token for another audience gets 401" grep -qx "status=401" <(out other-aud)

running() { [ "$(kubectl -n $NS get pod sleeper-a -o jsonpath='{.status.phase}')" = Running ]; }
wait_for "sleeper-a" 60 running
uid=$(kubectl -n $NS get pod sleeper-a -o jsonpath='{.metadata.uid}')
tokfile="$W/kubelet/pods/$uid/volumes/kubernetes.io~projected/tok/token"
cp "$tokfile" "$W/sleeper-a.token"
probe="$W/images/probe"
check "the host, with A's pod token, gets role A" "$probe" until "$base/role/role-a" "$W/sleeper-a.token" 200 10s

# ---------------------------------------------- token_review: deleted pod
kubectl -n $NS delete pod sleeper-a --grace-period=0 --force >/dev/null 2>&1
del_start=$(date +%s%N)
res=$("$probe" until "$base/role/role-a" "$W/sleeper-a.token" 401 45s || true)
log "deleted pod's token: $res after the pod object was gone"
ms=${res#ms=}
# The bound: the TokenReview cache time (30 s, counted from when the last
# review answered), plus one review round trip and the 20 ms poll.
check "a force-deleted pod's token stops working within the TokenReview cache time (30 s)" test "${ms:-999999}" -le 33000 2>/dev/null

# ------------------------------------------------ ConfigMap edit revokes A
pod sleeper-a2 app-a credsidecar $base/role/role-a sleep
running2() { [ "$(kubectl -n $NS get pod sleeper-a2 -o jsonpath='{.status.phase}')" = Running ]; }
wait_for "sleeper-a2" 60 running2
uid=$(kubectl -n $NS get pod sleeper-a2 -o jsonpath='{.metadata.uid}')
cp "$W/kubelet/pods/$uid/volumes/kubernetes.io~projected/tok/token" "$W/sleeper-a2.token"
"$probe" until "$base/role/role-a" "$W/sleeper-a2.token" 200 10s >/dev/null
suid=$(kubectl -n credsidecar get pods -l app.kubernetes.io/name=credsidecar -o jsonpath='{.items[0].metadata.uid}')
link="$W/kubelet/pods/$suid/volumes/kubernetes.io~configmap/config/..data"
sed -e "s#subject: \"$sa_a\"#subject: \"system:serviceaccount:$NS:nobody\"#" "$W/config.yaml" >"$W/config-revoked.yaml"
( sleep 0.5; kubectl -n credsidecar create configmap credsidecar-config --from-file=config.yaml="$W/config-revoked.yaml" --dry-run=client -o yaml | kubectl apply -f - >/dev/null 2>&1 ) &
editor=$!
res=$("$probe" until "$base/role/role-a" "$W/sleeper-a2.token" 401 60s "$link" || true)
wait $editor
log "revocation: $res after the ..data swap"
ms=${res#ms=}
check "a ConfigMap edit revokes A within 1 s of the ..data swap, no restart" test "${ms:-999999}" -le 1000 2>/dev/null
restarts=$(kubectl -n credsidecar get pods -l app.kubernetes.io/name=credsidecar -o jsonpath='{.items[0].status.containerStatuses[0].restartCount}')
check "the sidecar did not restart" test "$restarts" = 0

log "cluster up to checks done in $(( $(date +%s) - t0 ))s"
if [ "$failed" -gt 0 ]; then
  kubectl -n credsidecar logs ds/credsidecar 2>/dev/null | tail -30
fi
echo "k8s: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
