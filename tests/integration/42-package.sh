#!/usr/bin/env bash
# The Debian package: `make deb` builds it with `dpkg-buildpackage -us -uc -b`
# (from a copy of the tree, without -Werror, with Debian's hardening flags),
# once: a second `make deb` has nothing to do.  lintian finds no error in it
# (its warnings and notes are listed here).  It holds the binary, whose
# migrations default to the installed ones, the units naming /usr/bin, the
# manual pages, the default configuration as a conffile, the migrations and
# grants, the schemas, and contrib/'s rules and dashboard.  Its dependencies
# come from the binary's libraries, and its maintainer scripts neither
# enable nor start a unit on install.  Test 41 installs the same .deb on a
# systemd host and starts it.
source "$(dirname "$0")/../lib/testlib.sh"

version=$(<"$SK_ROOT/VERSION")
deb=$SK_ROOT/build/deb/scorekeeper_${version}_$(dpkg --print-architecture).deb
log=$SK_ROOT/build/deb/build.log

tap_is "debian/changelog's version is VERSION ($version)" \
    "$(dpkg-parsechangelog -l "$SK_ROOT/debian/changelog" -S Version)" "$version"
if out=$(make -C "$SK_ROOT" --no-print-directory deb 2>&1) && [[ -f $deb ]]; then
    tap_ok "make deb builds ${deb##*/}"
else
    tap_fail "make deb builds ${deb##*/}" "$out"
    tap_done
    exit
fi
tap_check "built by dpkg-buildpackage -us -uc -b (the make target's command)" \
    grep -q 'dpkg-buildpackage -us -uc -b' <(make -C "$SK_ROOT" --no-print-directory -n -B deb)
tap_is "a second make deb has nothing to do (tests 41 and 42 share one build)" \
    "$(make -C "$SK_ROOT" --no-print-directory -q deb && echo up-to-date)" up-to-date

# The package build's compiler lines: Debian's flags, not the project's -Werror.
cc_lines=$(grep -E '^(gcc|cc) .* -c ' "$log" || true)
tap_check "the package build compiled the sources ($(grep -c . <<<"$cc_lines") gcc lines in its log)" \
    test "$(grep -c . <<<"$cc_lines")" -ge 10
tap_is "no -Werror in the package build (Debian's -Werror=format-security aside)" \
    "$(grep -oE -- '-Werror( |$)' <<<"$cc_lines" | sort -u)" ""
tap_check "the project's own build keeps -Werror" \
    grep -q -- '-Werror ' <(make -C "$SK_ROOT" --no-print-directory -n -B build/obj/buf.o)
tap_check "dpkg-buildflags reached the compiler (-ffile-prefix-map, -fstack-protector-strong)" \
    grep -q -- '-ffile-prefix-map=.*-fstack-protector-strong' <<<"$cc_lines"

# ---- lintian
lint=$SK_TEST_TMP/lintian.txt
rc=0
lintian --fail-on error --display-info --pedantic "$deb" >"$lint" 2>&1 || rc=$?
tap_is "lintian: no error (exit status, errors)" "$rc $(grep '^E: ' "$lint" || true)" "0 "
tap_diag "lintian's warnings and notes ($(grep -c '^[WIP]: ' "$lint" || true)):"
tap_diag "$(grep '^[WIP]: ' "$lint" || echo none)"

# ---- what it holds
contents=$(dpkg-deb -c "$deb" | awk '{ print $6 }' | sed 's|^\./||; s|/$||')
has() { grep -qx "$1" <<<"$contents" || echo "missing: $1"; }
unitdir=$(pkg-config --variable=systemdsystemunitdir systemd)
unitdir=${unitdir#/}
want=(usr/bin/scorekeeper "$unitdir/scorekeeper.service" "$unitdir/scorekeeper@.service"
    usr/share/man/man8/scorekeeper.8.gz usr/share/man/man5/scorekeeper.conf.5.gz
    etc/scorekeeper/scorekeeper.conf usr/share/doc/scorekeeper/copyright
    usr/share/doc/scorekeeper/examples/prometheus/scorekeeper.rules.yml
    usr/share/doc/scorekeeper/examples/prometheus/scorekeeper.rules.test.yml
    usr/share/doc/scorekeeper/examples/grafana/scorekeeper-dashboard.json)
for f in "$SK_ROOT"/sql/*.sql; do want+=("usr/share/scorekeeper/sql/${f##*/}"); done
for f in "$SK_ROOT"/schemas/*.json; do want+=("usr/share/scorekeeper/schemas/${f##*/}"); done
tap_is "it holds the binary, units, man pages, configuration, every migration and schema, contrib/" \
    "$(for f in "${want[@]}"; do has "$f"; done)" ""
tap_is "the default configuration is its one conffile" \
    "$(dpkg-deb --ctrl-tarfile "$deb" | tar -xO ./conffiles)" /etc/scorekeeper/scorekeeper.conf
tap_is "nothing under /usr/local, nothing owned by anyone but root" \
    "$(dpkg-deb -c "$deb" | awk '$2 != "root/root" || $6 ~ /usr\/local/')" ""

x=$SK_TEST_TMP/x
dpkg-deb -x "$deb" "$x"
tap_is "the packaged binary: --version" "$("$x/usr/bin/scorekeeper" --version 2>&1)" "scorekeeper $version"
tap_is "the packaged binary looks for its migrations in /usr/share/scorekeeper/sql" \
    "$("$x/usr/bin/scorekeeper" --help | grep '^  sql\.dir ')" \
    "  sql.dir  (text; default /usr/share/scorekeeper/sql)"
tap_check "the packaged binary is hardened: full RELRO (BIND_NOW), PIE" \
    bash -c "readelf -d '$x/usr/bin/scorekeeper' | grep -q 'FLAGS.*BIND_NOW' && readelf -h '$x/usr/bin/scorekeeper' | grep -q 'DYN (Position-Independent'"
tap_is "the units start /usr/bin/scorekeeper with /etc/scorekeeper's files; no @placeholder@ left" \
    "$(grep -h '^ExecStart=' "$x/$unitdir"/*.service | sort) $(cat "$x/$unitdir"/*.service "$x/etc/scorekeeper/scorekeeper.conf" | grep -c '@[a-z]*@' || true)" \
    "ExecStart=/usr/bin/scorekeeper --config /etc/scorekeeper/%i.conf
ExecStart=/usr/bin/scorekeeper --config /etc/scorekeeper/scorekeeper.conf 0"
tap_is "the packaged rules and dashboard are contrib/'s, uncompressed" \
    "$(cmp "$x/usr/share/doc/scorekeeper/examples/prometheus/scorekeeper.rules.yml" "$SK_ROOT/contrib/prometheus/scorekeeper.rules.yml" &&
        cmp "$x/usr/share/doc/scorekeeper/examples/grafana/scorekeeper-dashboard.json" "$SK_ROOT/contrib/grafana/scorekeeper-dashboard.json" && echo same)" same

# Depends: what the binary links (dpkg-shlibdeps), so apt brings the libraries.
depends=$(dpkg-deb -f "$deb" Depends)
missing=
for lib in librdkafka1 libmariadb3 libcjson1 libsystemd0 libmicrohttpd12 libc6; do
    grep -qE "(^|, )$lib( |,|$)" <<<"$depends" || missing+="$lib "
done
tap_is "Depends names the libraries the binary links ($depends)" "$missing" ""

# Maintainer scripts (what they do on a real install: test 41).
ctrl=$SK_TEST_TMP/ctrl
mkdir -p "$ctrl"
dpkg-deb -e "$deb" "$ctrl"
tap_check "postinst has dh_installsystemd's snippets for scorekeeper.service" \
    grep -q "deb-systemd-helper update-state 'scorekeeper.service'" "$ctrl/postinst"
tap_is "postinst, prerm and postrm pass sh -n" \
    "$(for s in postinst prerm postrm; do sh -n "$ctrl/$s" 2>&1 || echo "$s fails"; done)" ""
tap_done
