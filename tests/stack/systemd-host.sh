#!/usr/bin/env bash
# systemd-host.sh — the root file system of a Debian 12 host that boots
# systemd as PID 1 in a container (systemd-nspawn), for the test that
# follows the README's "Install and run under systemd" literally (test 41).
#
# Prints the directory's path on stdout.  Built once with debootstrap and
# apt-get from Debian's mirror, then cached under ~/.cache/scorekeeper/
# (SK_CACHE); the key is a hash of the package list and of `layout`, so a
# change to the packages, or to how the tree is made (raise `layout`),
# builds a fresh one and removes the old.  Tests boot it with
# --volatile=overlay: what they change lives in memory and is gone after,
# and the cached tree stays as built.
#
# It holds what an operator's server has before the README's first step:
# systemd, MariaDB, sudo, curl, and the packages `make build-deps` would
# install (so that step finds them present: the container has no network).
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd -P)
cache=${SK_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/scorekeeper}
mirror=${SK_DEBIAN_MIRROR:-http://deb.debian.org/debian}
suite=bookworm
layout=1

mapfile -t build < <("$root/tests/tools/deps.sh" --list build)
packages=(systemd systemd-sysv dbus sudo mariadb-server mariadb-client curl ca-certificates
    "${build[@]}")
key=$(printf '%s\n' "$suite" "$layout" "${packages[@]}" | sha256sum | cut -c1-12)
dir=$cache/systemd-host-$key
if [[ -f $dir/.complete ]]; then
    printf '%s\n' "$dir/root"
    exit 0
fi

for tool in debootstrap systemd-nspawn; do
    command -v "$tool" >/dev/null || {
        echo "systemd-host: $tool is missing (make deps installs it)" >&2
        exit 1
    }
done
if [[ $(id -u) -ne 0 ]]; then
    echo "systemd-host: debootstrap needs root" >&2
    exit 1
fi

# Built beside the final place and renamed when complete, so an interrupted
# build never looks like a cached one.
mkdir -p "$cache"
rm -rf "$cache"/systemd-host-*.tmp
tmp=$cache/systemd-host-$key.tmp
mkdir -p "$tmp"
echo "systemd-host: debootstrap $suite into $tmp (once; cached)" >&2
debootstrap --variant=minbase --include=systemd,systemd-sysv,dbus,ca-certificates \
    "$suite" "$tmp/root" "$mirror" >"$tmp/debootstrap.log" 2>&1 || {
    tail -n 20 "$tmp/debootstrap.log" >&2
    echo "systemd-host: debootstrap failed (log above)" >&2
    exit 1
}

# The rest through apt-get inside the tree (its dependency resolution is
# apt's, not debootstrap's).  Not booted: systemd-nspawn as a chroot with
# /proc and /dev, on the host's network.  Services are enabled by their
# packages and first started when a test boots the tree.
echo "systemd-host: installing ${packages[*]}" >&2
# Where systemd is PID 1, nspawn asks it over D-Bus for a scope of its own;
# elsewhere (a container, as on the CI machine) there is no bus to ask, and
# the container stays in the caller's cgroup.
scope=(--keep-unit)
[[ -d /run/systemd/system ]] && scope=()
if ! systemd-nspawn --quiet --register=no "${scope[@]}" -D "$tmp/root" \
    env DEBIAN_FRONTEND=noninteractive bash -c \
    'apt-get update -q && apt-get install -y -q --no-install-recommends "$@" && apt-get clean' \
    apt "${packages[@]}" >"$tmp/apt.log" 2>&1; then
    tail -n 20 "$tmp/apt.log" >&2
    echo "systemd-host: apt-get inside the tree failed (log above)" >&2
    exit 1
fi
# No login prompt on the container's console: nobody reads it.
rm -f "$tmp/root/etc/systemd/system/getty.target.wants/"* \
    "$tmp/root/etc/systemd/system/multi-user.target.wants/console-getty.service"

rm -rf "$dir"
touch "$tmp/.complete"
mv "$tmp" "$dir"
for old in "$cache"/systemd-host-*; do
    [[ $old == "$dir" ]] || rm -rf "$old"
done
printf '%s\n' "$dir/root"
