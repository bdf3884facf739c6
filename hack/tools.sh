#!/usr/bin/env bash
# tools.sh builds the pinned tools Homeostat needs from the Go module proxy into a cache
# outside the clone, keyed by version. A second run finds them and does nothing.
#
#   hack/tools.sh [controller-gen|kubernetes|kubectl|etcd|kwok|envtest|golangci-lint|prometheus|promtool|cluster|all]...
#   hack/tools.sh path <tool>     prints the absolute path of one binary (building it first),
#                                 e.g. path kubectl, path kube-apiserver
#   hack/tools.sh envtest-dir     prints the KUBEBUILDER_ASSETS directory (building it first)
#
# kubernetes is kube-apiserver, kube-controller-manager, kube-scheduler and kubectl, all of
# one version from k8s.io/kubernetes, each built only when it is missing; the tests run
# that kubectl (make test puts its directory first on PATH). cluster is what the local
# control plane runs: kubernetes, etcd and kwok.
#
# prometheus is the one tool not built here: it is Debian's package, which the e2e
# autoscaling specs run (the tests start their own server; the package's service is never
# started). As root it is installed with apt-get when missing; otherwise the script says
# how to install it. promtool comes with it; the monitoring mixin's tests run it.
#
# The cache lives in $HOMEOSTAT_CACHE (default: ${XDG_CACHE_HOME:-$HOME/.cache}/homeostat).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=versions.env
source "$here/versions.env"
CACHE=${HOMEOSTAT_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/homeostat}
mkdir -p "$CACHE"
export GOTOOLCHAIN=${GOTOOLCHAIN:-local} GOFLAGS=-mod=mod

log() { echo "hack/tools.sh: $*" >&2; }

# with_progress runs a long command and prints a heartbeat every 30 s so a cold build does
# not look hung.
with_progress() {
  local what=$1; shift
  local start=$SECONDS
  "$@" &
  local pid=$!
  while kill -0 "$pid" 2>/dev/null; do
    for _ in $(seq 30); do kill -0 "$pid" 2>/dev/null || break; sleep 1; done
    kill -0 "$pid" 2>/dev/null && log "still building $what ($((SECONDS - start))s so far)"
  done
  wait "$pid"
  log "built $what in $((SECONDS - start))s"
}

# lock serialises builds of one tool across concurrent callers (parallel test packages).
lock() { exec {LOCKFD}>"$CACHE/.$1.lock"; flock "$LOCKFD"; }

# go_module_build creates a throwaway module at $1 that requires $2 and builds the
# packages given after "--" into $3.
build_controller_gen() {
  local dir="$CACHE/controller-gen/$CONTROLLER_TOOLS_VERSION"
  [ -x "$dir/controller-gen" ] && return 0
  lock controller-gen
  [ -x "$dir/controller-gen" ] && return 0
  log "building controller-gen $CONTROLLER_TOOLS_VERSION"
  mkdir -p "$dir.tmp"
  with_progress controller-gen env GOBIN="$dir.tmp" go install "sigs.k8s.io/controller-tools/cmd/controller-gen@$CONTROLLER_TOOLS_VERSION"
  rm -rf "$dir"; mv "$dir.tmp" "$dir"
}

build_golangci_lint() {
  local dir="$CACHE/golangci-lint/$GOLANGCI_LINT_VERSION"
  [ -x "$dir/golangci-lint" ] && return 0
  lock golangci-lint
  [ -x "$dir/golangci-lint" ] && return 0
  log "building golangci-lint $GOLANGCI_LINT_VERSION (a few minutes, once)"
  mkdir -p "$dir.tmp"
  with_progress golangci-lint env GOBIN="$dir.tmp" go install "github.com/golangci/golangci-lint/v2/cmd/golangci-lint@$GOLANGCI_LINT_VERSION"
  rm -rf "$dir"; mv "$dir.tmp" "$dir"
}

build_kwok() {
  local dir="$CACHE/kwok/$KWOK_VERSION"
  [ -x "$dir/kwok" ] && [ -x "$dir/kwokctl" ] && return 0
  lock kwok
  [ -x "$dir/kwok" ] && [ -x "$dir/kwokctl" ] && return 0
  log "building kwok and kwokctl $KWOK_VERSION"
  mkdir -p "$dir.tmp"
  local ld="-s -w -X sigs.k8s.io/kwok/pkg/consts.Version=$KWOK_VERSION -X sigs.k8s.io/kwok/pkg/consts.KubeVersion=$KUBERNETES_VERSION"
  with_progress kwok env GOBIN="$dir.tmp" go install -trimpath -ldflags "$ld" \
    "sigs.k8s.io/kwok/cmd/kwok@$KWOK_VERSION" "sigs.k8s.io/kwok/cmd/kwokctl@$KWOK_VERSION"
  rm -rf "$dir"; mv "$dir.tmp" "$dir"
}

build_etcd() {
  local dir="$CACHE/etcd/$ETCD_VERSION"
  [ -x "$dir/etcd" ] && return 0
  lock etcd
  [ -x "$dir/etcd" ] && return 0
  log "building etcd $ETCD_VERSION"
  local mod; mod=$(mktemp -d)
  (
    cd "$mod"
    go mod init homeostat.dev/hack/etcdbuild >/dev/null 2>&1
    go get "go.etcd.io/etcd/server/v3@$ETCD_VERSION" >/dev/null
    mkdir -p "$dir.tmp"
    with_progress etcd go build -trimpath -ldflags "-s -w" -o "$dir.tmp/etcd" go.etcd.io/etcd/server/v3
  )
  rm -rf "$mod" "$dir"; mv "$dir.tmp" "$dir"
}

# KUBE_BINS are the binaries build_kubernetes builds from k8s.io/kubernetes.
KUBE_BINS=(kube-apiserver kube-controller-manager kube-scheduler kubectl)

# kube_missing prints those of the named binaries (default: KUBE_BINS) that are not built yet.
kube_missing() {
  local dir="$CACHE/kubernetes/$KUBERNETES_VERSION" b
  for b in "${@:-${KUBE_BINS[@]}}"; do [ -x "$dir/$b" ] || echo "$b"; done
}

# build_kubernetes builds the named binaries of k8s.io/kubernetes (default: KUBE_BINS:
# kube-apiserver, kube-controller-manager, kube-scheduler and kubectl), each only if it is
# missing, so a cache built before kubectl was added gets just kubectl. Its go.mod points
# the k8s.io staging modules at ./staging, which the proxy does not serve, so a build
# module of our own replaces each of them with the published v0.<minor>.<patch> of the
# same name.
build_kubernetes() {
  local dir="$CACHE/kubernetes/$KUBERNETES_VERSION"
  [ -z "$(kube_missing "$@")" ] && return 0
  lock kubernetes
  local bins b
  mapfile -t bins < <(kube_missing "$@")
  [ ${#bins[@]} = 0 ] && return 0
  local eta="about 2-3 minutes per binary cold on 2 cores, once"
  [[ " ${bins[*]} " == *" kube-apiserver "* ]] && eta="about 7 minutes for the control plane cold on 2 cores, once"
  log "building ${bins[*]} $KUBERNETES_VERSION ($eta)"
  local staging="v0.${KUBERNETES_VERSION#v1.}"
  local mod; mod=$(mktemp -d)
  rm -rf "$dir.tmp"; mkdir -p "$dir.tmp"
  (
    cd "$mod"
    local gomod
    gomod=$(go mod download -json "k8s.io/kubernetes@$KUBERNETES_VERSION" | sed -n 's/.*"GoMod": "\(.*\)",/\1/p')
    {
      echo "module homeostat.dev/hack/k8sbuild"
      echo
      grep -m1 '^go ' "$gomod"
      echo
      echo "require k8s.io/kubernetes $KUBERNETES_VERSION"
      echo
      sed -n 's#^\s*\(k8s.io/[a-z0-9-]*\) => ./staging/.*#replace \1 => \1 '"$staging"'#p' "$gomod"
    } > go.mod
    echo 'package k8sbuild' > doc.go
    # tools.go imports the commands to build, so that tidy adds every module they need.
    {
      printf '//go:build tools\n\npackage k8sbuild\n\nimport (\n'
      for b in "${bins[@]}"; do printf '\t_ "k8s.io/kubernetes/cmd/%s"\n' "$b"; done
      printf ')\n'
    } > tools.go
    go mod tidy -e >/dev/null 2>&1 || true
    go mod download >/dev/null
    local minor=${KUBERNETES_VERSION#v1.}; minor=${minor%%.*}
    local ld="-s -w"
    for p in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
      ld="$ld -X $p.gitVersion=$KUBERNETES_VERSION -X $p.gitMajor=1 -X $p.gitMinor=$minor -X $p.gitTreeState=clean -X $p.buildDate=1970-01-01T00:00:00Z"
    done
    for b in "${bins[@]}"; do
      with_progress "$b" go build -tags tools -trimpath -ldflags "$ld" -o "$dir.tmp/$b" "k8s.io/kubernetes/cmd/$b"
    done
  )
  # Each binary moves into place on its own: the ones built before stay as they are.
  mkdir -p "$dir"
  for b in "${bins[@]}"; do mv -f "$dir.tmp/$b" "$dir/$b"; done
  rm -rf "$mod" "$dir.tmp"
}

# ensure_prometheus makes sure a prometheus binary is on PATH: Debian's package, installed
# with apt-get when run as root. The package's service is not started: a policy-rc.d that
# denies every start is in place while apt-get runs, unless one exists already.
ensure_prometheus() {
  command -v prometheus >/dev/null && return 0
  if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null; then
    log "prometheus is not installed. Install Debian's package as root:"
    log "  apt-get update && apt-get install -y --no-install-recommends prometheus"
    log "or put a prometheus binary (2.x or later) on PATH."
    exit 1
  fi
  lock prometheus
  command -v prometheus >/dev/null && return 0
  log "installing Debian's prometheus package (its service is not started)"
  local policy=/usr/sbin/policy-rc.d ours=0
  if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\n# hack/tools.sh: no service starts while prometheus is installed\nexit 101\n' > "$policy"
    chmod 755 "$policy"; ours=1
  fi
  local rc=0
  { DEBIAN_FRONTEND=noninteractive apt-get update &&
    DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends prometheus; } >&2 || rc=$?
  [ $ours = 1 ] && rm -f "$policy"
  [ $rc = 0 ] || { log "installing prometheus failed (apt-get exited $rc)"; exit $rc; }
  command -v prometheus >/dev/null || { log "prometheus is installed but not on PATH"; exit 1; }
}

# ensure_promtool makes sure promtool is on PATH: it is part of Debian's prometheus
# package, installed as ensure_prometheus does.
ensure_promtool() {
  command -v promtool >/dev/null && return 0
  ensure_prometheus
  command -v promtool >/dev/null || { log "prometheus is installed but promtool is not on PATH"; exit 1; }
}

# envtest assembles the KUBEBUILDER_ASSETS directory: links to kube-apiserver, etcd and
# kubectl of the cache.
build_envtest() {
  build_kubernetes kube-apiserver kubectl; build_etcd
  local dir="$CACHE/envtest/$KUBERNETES_VERSION-$ETCD_VERSION" name target
  mkdir -p "$dir"
  # (An older tools.sh linked whichever kubectl was on PATH: each link is checked.)
  for name in kube-apiserver kubectl etcd; do
    case $name in
      etcd) target="$CACHE/etcd/$ETCD_VERSION/etcd" ;;
      *) target="$CACHE/kubernetes/$KUBERNETES_VERSION/$name" ;;
    esac
    [ "$(readlink "$dir/$name" || true)" = "$target" ] || ln -sfn "$target" "$dir/$name"
  done
}

tool_path() {
  case $1 in
    controller-gen) build_controller_gen; echo "$CACHE/controller-gen/$CONTROLLER_TOOLS_VERSION/controller-gen" ;;
    golangci-lint) build_golangci_lint; echo "$CACHE/golangci-lint/$GOLANGCI_LINT_VERSION/golangci-lint" ;;
    kwok|kwokctl) build_kwok; echo "$CACHE/kwok/$KWOK_VERSION/$1" ;;
    etcd) build_etcd; echo "$CACHE/etcd/$ETCD_VERSION/etcd" ;;
    kube-apiserver|kube-controller-manager|kube-scheduler) build_kubernetes kube-apiserver kube-controller-manager kube-scheduler
      echo "$CACHE/kubernetes/$KUBERNETES_VERSION/$1" ;;
    kubectl) build_kubernetes kubectl; echo "$CACHE/kubernetes/$KUBERNETES_VERSION/kubectl" ;;
    prometheus) ensure_prometheus; command -v prometheus ;;
    promtool) ensure_promtool; command -v promtool ;;
    *) log "unknown tool $1"; exit 2 ;;
  esac
}

build() {
  case $1 in
    controller-gen) build_controller_gen ;;
    golangci-lint) build_golangci_lint ;;
    kubernetes) build_kubernetes ;;
    kubectl) build_kubernetes kubectl ;;
    etcd) build_etcd ;;
    kwok) build_kwok ;;
    envtest) build_envtest ;;
    prometheus) ensure_prometheus ;;
    promtool) ensure_promtool ;;
    cluster) build_kubernetes; build_etcd; build_kwok ;;
    all) build_controller_gen; build_kubernetes; build_etcd; build_kwok; build_envtest ;;
    *) log "unknown tool $1"; exit 2 ;;
  esac
}

case ${1:-all} in
  path) tool_path "$2" ;;
  envtest-dir) build_envtest; echo "$CACHE/envtest/$KUBERNETES_VERSION-$ETCD_VERSION" ;;
  *) for t in "${@:-all}"; do build "$t"; done ;;
esac
