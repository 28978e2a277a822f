#!/usr/bin/env bash
# Install the Debian packages scorekeeper needs.
#
#   deps.sh            everything to build, test, demo and benchmark (make deps)
#   deps.sh build      only what building and installing the daemon needs
#                      (make build-deps: what an operator's server needs)
#   deps.sh --list [build|all]
#                      print the package names, one per line, and exit
#
# Idempotent and cheap: one dpkg-query call decides whether anything is
# missing, so `make check` can run this every time without touching the
# network.  apt-get update only runs when an install is actually needed.
set -euo pipefail

# Keep in sync with what the Makefile, tests/stack/*, tests/run.sh,
# tests/lib/testlib.sh and tests/demo/* invoke.
build_packages=(
    build-essential gcc make pkg-config
    librdkafka-dev libmariadb-dev libcjson-dev libsystemd-dev libmicrohttpd-dev libssl-dev
)
packages=(
    "${build_packages[@]}" libcmocka-dev
    mariadb-server mariadb-client
    kcat default-jre-headless maven
    jq gnuplot-nox
    clang libclang-rt-14-dev
    procps iproute2 nftables util-linux coreutils findutils sed gawk grep
    ca-certificates openssl git curl
    systemd-container debootstrap socat
    dpkg-dev debhelper lintian
    prometheus # promtool, for test 43; its own server is not used
)

list=0
if [[ ${1:-} == --list ]]; then
    list=1
    shift
fi
case ${1:-all} in
build) packages=("${build_packages[@]}") ;;
all) ;;
*)
    echo "usage: deps.sh [--list] [build|all]" >&2
    exit 2
    ;;
esac
if ((list)); then
    printf '%s\n' "${packages[@]}"
    exit 0
fi

missing=()
# dpkg-query prints one line per package it knows; packages it has never
# heard of are reported on stderr and simply do not appear as installed.
status=$(dpkg-query -W -f='${Package} ${db:Status-Status}\n' "${packages[@]}" 2>/dev/null || true)
for p in "${packages[@]}"; do
    if ! grep -qx "$p installed" <<<"$status"; then
        missing+=("$p")
    fi
done
[[ ${#missing[@]} -eq 0 ]] && exit 0

echo "deps: installing missing packages: ${missing[*]}" >&2
sudo=()
if [[ $(id -u) -ne 0 ]]; then
    command -v sudo >/dev/null || {
        echo "deps: not root and sudo is not available; install as root: ${missing[*]}" >&2
        exit 1
    }
    sudo=(sudo)
fi
export DEBIAN_FRONTEND=noninteractive
if ! "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -q >&2; then
    echo "deps: apt-get update failed; could not install: ${missing[*]}" >&2
    exit 1
fi
if ! "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive \
        apt-get install -y -q --no-install-recommends "${missing[@]}" >&2; then
    echo "deps: apt-get install failed for: ${missing[*]}" >&2
    exit 1
fi

# apt can "succeed" while leaving a package unconfigured; verify.
still=()
for p in "${missing[@]}"; do
    s=$(dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null || true)
    [[ $s == installed ]] || still+=("$p")
done
if [[ ${#still[@]} -gt 0 ]]; then
    echo "deps: still not installed after apt-get: ${still[*]}" >&2
    exit 1
fi
echo "deps: installed ${missing[*]}" >&2
