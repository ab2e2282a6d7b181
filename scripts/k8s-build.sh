#!/usr/bin/env bash
# Builds the single-node Kubernetes the cluster test runs (kube-apiserver,
# kube-controller-manager, kube-scheduler, kubelet, kubectl) from the Go module
# proxy, into a cache outside the clone, so a warm CI run reuses it in seconds.
#   scripts/k8s-build.sh [CACHE_DIR]   (default /var/cache/credsidecar-ci/k8s-v1.34.4)
# k8s.io/kubernetes cannot be `go install`ed (its go.mod replaces the staging
# modules with ./staging paths the module zip lacks): a wrapper module requires
# it and replaces each staging module with its published twin.
set -euo pipefail
K8S_VERSION=v1.34.4
STAGING_VERSION=v0.34.4
out=${1:-/var/cache/credsidecar-ci/k8s-$K8S_VERSION}
bins=(kube-apiserver kube-controller-manager kube-scheduler kubelet kubectl)

have=1
for b in "${bins[@]}"; do [ -x "$out/bin/$b" ] || have=0; done
if [ "$have" = 1 ] && [ -f "$out/bin/.complete" ]; then
  echo "k8s-build: $K8S_VERSION cached in $out"
  exit 0
fi

mkdir -p "$out/bin"
work="$out/src"
rm -rf "$work"
mkdir -p "$work/stub"
cd "$work"

staging=(api apiextensions-apiserver apimachinery apiserver cli-runtime client-go
  cloud-provider cluster-bootstrap code-generator component-base component-helpers
  controller-manager cri-api cri-client csi-translation-lib dynamic-resource-allocation
  endpointslice externaljwt kms kube-aggregator kube-controller-manager kube-proxy
  kube-scheduler kubectl kubelet metrics mount-utils pod-security-admission
  sample-apiserver sample-cli-plugin sample-controller)

{
  echo "module credsidecar.test/k8sbuild"
  echo
  echo "go 1.24"
  echo
  echo "require k8s.io/kubernetes $K8S_VERSION"
  echo
  echo "replace ("
  for m in "${staging[@]}"; do
    case $m in
      sample-*)
        # Not served at this version; no binary built here imports them.
        mkdir -p "stub/$m"
        printf 'module k8s.io/%s\n\ngo 1.24\n' "$m" >"stub/$m/go.mod"
        echo "	k8s.io/$m => ./stub/$m"
        ;;
      *) echo "	k8s.io/$m => k8s.io/$m $STAGING_VERSION" ;;
    esac
  done
  echo ")"
} >go.mod
cat >tools.go <<'GO'
//go:build tools

package tools
GO

export CGO_ENABLED=0 GOFLAGS=-mod=mod GOTOOLCHAIN=local
go mod tidy -e >/dev/null 2>&1 || true
go get k8s.io/kubernetes@$K8S_VERSION >/dev/null

ld="-s -w"
for p in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
  ld+=" -X $p.gitVersion=$K8S_VERSION -X $p.gitMajor=1 -X $p.gitMinor=34"
  ld+=" -X $p.gitTreeState=clean -X $p.buildDate=1970-01-01T00:00:00Z"
done
start=$(date +%s)
for b in "${bins[@]}"; do
  go build -trimpath -ldflags "$ld" -o "$out/bin/$b" "k8s.io/kubernetes/cmd/$b"
done
touch "$out/bin/.complete"
echo "k8s-build: built $K8S_VERSION in $(( $(date +%s) - start ))s into $out"
