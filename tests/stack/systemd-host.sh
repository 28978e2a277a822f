#!/usr/bin/env bash
# systemd-host.sh — a Debian 12 host that boots systemd as PID 1 in a
# container (systemd-nspawn), for the test that follows the README's
# "Install and run under systemd" literally (test 41).
#
#   systemd-host.sh               build the tree if needed; print its path
#   systemd-host.sh nspawn ARGS   build it if needed, then exec systemd-nspawn
#                                 on it with ARGS (the pid stays the same)
#
# Built once with debootstrap and apt-get from Debian's mirror, then cached
# in SK_CACHE (tests/stack/lib.sh); the key is a hash of the package list
# and of `layout`, so a change to the packages, or to how the tree is made
# (raise `layout`), builds a fresh one and removes the old.  Tests boot it
# with --volatile=overlay: what they change lives in memory and is gone
# after, and the cached tree stays as built.
#
# It holds what an operator's server has before the README's first step:
# systemd, MariaDB, sudo, curl; no compiler.  The first step installs the
# package with apt-get, which fetches its dependencies: the container has no
# network, so the libraries the package depends on (and theirs) are
# downloaded into apt's archive cache here, not installed.  A dependency the
# package gains must be added to `libraries` (its install then fails saying
# which package apt could not fetch).
set -euo pipefail

# shellcheck source=tests/stack/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
mirror=${SK_DEBIAN_MIRROR:-http://deb.debian.org/debian}
suite=bookworm
layout=2

packages=(systemd systemd-sysv dbus sudo mariadb-server mariadb-client curl ca-certificates)
libraries=(librdkafka1 libmariadb3 libcjson1 libsystemd0 libmicrohttpd12)
key=$(printf '%s\n' "$suite" "$layout" "${packages[@]}" -- "${libraries[@]}" | sha256sum | cut -c1-12)
dir=$SK_CACHE/systemd-host-$key

# nspawn ROOT ARGS...: systemd-nspawn on ROOT, not registered with machined.
# Where systemd is PID 1, nspawn asks it over D-Bus for a scope of its own;
# elsewhere (a container, as on the CI machine) there is no bus to ask, and
# the container stays in the caller's cgroup (--keep-unit).
nspawn() {
    local root=$1 scope=(--keep-unit)
    shift
    [[ -d /run/systemd/system ]] && scope=()
    exec systemd-nspawn --quiet --register=no "${scope[@]}" -D "$root" "$@"
}

build_tree() {
    local tool tmp old
    for tool in debootstrap systemd-nspawn flock; do
        command -v "$tool" >/dev/null || sk_die "systemd-host: $tool is missing (make deps installs it)"
    done
    [[ $(id -u) -eq 0 ]] || sk_die "systemd-host: debootstrap needs root"

    # Built beside the final place and renamed when complete, so an
    # interrupted build never looks like a cached one; one build at a time.
    mkdir -p "$SK_CACHE"
    exec {lock}>"$SK_CACHE/systemd-host.lock"
    flock "$lock"
    [[ -f $dir/.complete ]] && return 0
    tmp=$dir.tmp
    rm -rf "$tmp"
    mkdir -p "$tmp"
    sk_log "systemd-host: debootstrap $suite into $tmp (once; cached)"
    debootstrap --variant=minbase --include=systemd,systemd-sysv,dbus,ca-certificates \
        "$suite" "$tmp/root" "$mirror" >"$tmp/debootstrap.log" 2>&1 || {
        tail -n 20 "$tmp/debootstrap.log" >&2
        sk_die "systemd-host: debootstrap failed (log above)"
    }

    # The rest through apt-get inside the tree (its dependency resolution is
    # apt's, not debootstrap's): nspawn as a chroot with /proc and /dev, on
    # the host's network.  Services are enabled by their packages and first
    # started when a test boots the tree.  The package lists stay, so apt
    # inside the booted tree resolves dependencies from the cached archives.
    sk_log "systemd-host: installing ${packages[*]}; downloading ${libraries[*]}"
    if ! (nspawn "$tmp/root" env DEBIAN_FRONTEND=noninteractive bash -c \
        'apt-get update -q && apt-get install -y -q --no-install-recommends "${@:2:$1}" &&
         apt-get clean && apt-get install -y -q --no-install-recommends --download-only "${@:$1+2}"' \
        apt "${#packages[@]}" "${packages[@]}" "${libraries[@]}") >"$tmp/apt.log" 2>&1; then
        tail -n 20 "$tmp/apt.log" >&2
        sk_die "systemd-host: apt-get inside the tree failed (log above)"
    fi
    # No login prompt on the container's console: nobody reads it.
    rm -f "$tmp/root/etc/systemd/system/getty.target.wants/"* \
        "$tmp/root/etc/systemd/system/multi-user.target.wants/console-getty.service"

    rm -rf "$dir"
    touch "$tmp/.complete"
    mv "$tmp" "$dir"
    for old in "$SK_CACHE"/systemd-host-*; do
        [[ $old == "$dir" ]] || rm -rf "$old"
    done
}

[[ -f $dir/.complete ]] || build_tree
case ${1:-} in
"") printf '%s\n' "$dir/root" ;;
nspawn)
    shift
    nspawn "$dir/root" "$@"
    ;;
*) sk_die "usage: systemd-host.sh [nspawn ARGS...]" ;;
esac
