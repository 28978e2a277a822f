#!/usr/bin/env bash
# make install / make uninstall into a DESTDIR: exactly the expected files
# with the expected modes, the operator's configuration never overwritten nor
# removed, man pages that render without warnings, an installed binary whose
# default sql.dir is where its migrations went (and which applies them), and
# a developer build that still defaults to "sql".
source "$(dirname "$0")/../lib/testlib.sh"

mk() { make -C "$SK_ROOT" --no-print-directory "$@" 2>&1; }
# Files and symlinks under a root, relative, sorted.
files_of() { (cd "$1" && find . \( -type f -o -type l \) | sed 's|^\./||' | LC_ALL=C sort); }

root=$SK_TEST_TMP/root
version=$(<"$SK_ROOT/VERSION")
schemas=$(cd "$SK_ROOT/schemas" && ls ./*.json README.md | sed 's|^\./||')

expected="etc/scorekeeper/scorekeeper.conf
usr/bin/scorekeeper
usr/lib/systemd/system/scorekeeper.service
usr/lib/systemd/system/scorekeeper@.service
usr/share/man/man5/scorekeeper.conf.5
usr/share/man/man8/scorekeeper.8
usr/share/scorekeeper/schemas/README.md
usr/share/scorekeeper/schemas/result-event.schema.json
usr/share/scorekeeper/schemas/score-event.schema.json
usr/share/scorekeeper/schemas/user-event.schema.json
usr/share/scorekeeper/sql/001_schema.sql
usr/share/scorekeeper/sql/002_game_offsets.sql
usr/share/scorekeeper/sql/003_game_players_key.sql
usr/share/scorekeeper/sql/004_user_offsets.sql
usr/share/scorekeeper/sql/grants.sql"
# The sql/ and schemas/ parts follow the source tree: a new migration or
# schema is installed too.  The list above must be updated with it.
want_tree=$( (printf '%s\n' "$expected" | grep -v -e '^usr/share/scorekeeper/'
    for f in "$SK_ROOT"/sql/*.sql; do echo "usr/share/scorekeeper/sql/${f##*/}"; done
    for f in $schemas; do echo "usr/share/scorekeeper/schemas/$f"; done) | LC_ALL=C sort)
tap_is "the expected list matches sql/ and schemas/ of the tree" "$want_tree" "$expected"

if out=$(mk install DESTDIR="$root" PREFIX=/usr); then
    tap_ok "make install DESTDIR=… PREFIX=/usr"
else
    tap_fail "make install DESTDIR=… PREFIX=/usr" "$out"
fi
tap_is "installed files" "$(files_of "$root")" "$expected"
modes=$(cd "$root" && stat -c '%a %n' usr/bin/scorekeeper etc/scorekeeper/scorekeeper.conf \
    usr/lib/systemd/system/scorekeeper.service usr/share/man/man8/scorekeeper.8 \
    usr/share/scorekeeper/sql/001_schema.sql)
tap_is "modes: binary 0755, everything else 0644" "$modes" "755 usr/bin/scorekeeper
644 etc/scorekeeper/scorekeeper.conf
644 usr/lib/systemd/system/scorekeeper.service
644 usr/share/man/man8/scorekeeper.8
644 usr/share/scorekeeper/sql/001_schema.sql"

bin=$root/usr/bin/scorekeeper
# Every setting of the table, as --help lists them (keys have a dot).
settings() { "$bin" --help | sed -n 's/^  \([a-z_]*\.[a-z_.]*\)[ ,].*/\1/p'; }
n_settings=$(settings | wc -l)
if ((n_settings >= 20)); then tap_ok "--help lists $n_settings settings"; else tap_fail "--help lists the settings" "only $n_settings found: parsing --help went wrong"; fi
tap_is "installed binary: --version" "$("$bin" --version 2>&1)" "scorekeeper $version"
tap_is "installed binary: sql.dir defaults to PREFIX/share/scorekeeper/sql" \
    "$("$bin" --help | grep '^  sql\.dir ')" "  sql.dir  (text; default /usr/share/scorekeeper/sql)"
# (make check builds only the sanitizer build: build the plain one here)
make -s -C "$SK_ROOT" build/scorekeeper >/dev/null
tap_is "developer build (make): sql.dir still defaults to sql" \
    "$("$SK_ROOT/build/scorekeeper" --help | grep '^  sql\.dir ')" "  sql.dir  (text; default sql)"

conf=$root/etc/scorekeeper/scorekeeper.conf
tap_is "default config: no @placeholder@ left" "$(grep -o '@[a-z]*@' "$conf" || true)" ""
tap_is "default config: every setting is there, commented" \
    "$(for k in $(settings); do grep -q "^#$k =" "$conf" || echo "$k"; done)" ""
tap_is "default config: no active line" "$(grep -v -e '^#' -e '^$' "$conf" || true)" ""

# Man pages: render, without a single warning.
for page in usr/share/man/man8/scorekeeper.8 usr/share/man/man5/scorekeeper.conf.5; do
    rc=0
    warn=$(groff -man -ww -z "$root/$page" 2>&1) || rc=$?
    tap_is "$page: groff -man -ww -z: exit 0, no warnings" "$rc:$warn" "0:"
    rc=0
    warn=$(MANWIDTH=80 man --warnings -l "$root/$page" 2>&1 >/dev/null) || rc=$?
    tap_is "$page: man --warnings -l renders at 80 columns without warnings" "$rc:$warn" "0:"
done
# Every exit status in scorekeeper(8), every setting in scorekeeper.conf(5).
man_has_exit_codes() {
    local page c
    page=$(MANWIDTH=80 man -l "$root/usr/share/man/man8/scorekeeper.8" 2>/dev/null)
    for c in 0 1 64 65 66 69 70 77 78; do
        grep -qE "^       $c( |\$)" <<<"$page" || { echo "exit status $c missing"; return 1; }
    done
}
man_has_settings() {
    local page k
    page=$(MANWIDTH=200 man -l "$root/usr/share/man/man5/scorekeeper.conf.5" 2>/dev/null)
    for k in $(settings); do
        grep -qE "^       $k = " <<<"$page" || { echo "$k missing"; return 1; }
    done
}
tap_check "scorekeeper(8) documents every exit status" man_has_exit_codes
tap_check "scorekeeper.conf(5) documents every setting" man_has_settings

# The operator's configuration survives a second install.
printf 'db.url = mariadb://marker@db/operator\n' >>"$conf"
before=$(sha256sum <"$conf")
if out=$(mk install DESTDIR="$root" PREFIX=/usr); then
    tap_ok "second make install"
else
    tap_fail "second make install" "$out"
fi
tap_is "second install: config not overwritten" "$(sha256sum <"$conf")" "$before"
tap_check "second install: the new default is installed as scorekeeper.conf.example" \
    cmp "$conf.example" <(sed '$d' "$conf")
tap_is "second install: files" "$(files_of "$root")" "$(LC_ALL=C sort <<<"$expected
etc/scorekeeper/scorekeeper.conf.example")"

# The installed migrations and default config work for real (private stack).
if [[ $SK_STACK_OURS == 1 ]]; then
    db=t_install_$(od -An -N4 -tx1 /dev/urandom | tr -d ' \n')
    sk_track_db "$db"
    sk_sql "" "CREATE DATABASE \`$db\` CHARACTER SET utf8mb4"
    rc=0
    out=$("$bin" --config "$root/etc/scorekeeper/scorekeeper.conf.example" \
        -o db.url="mariadb://root@localhost/$db?socket=$SCOREKEEPER_DB_SOCKET" \
        -o kafka.bootstrap.servers=127.0.0.1:1 -o sql.dir="$root/usr/share/scorekeeper/sql" \
        migrate 2>&1) || rc=$?
    tap_is "installed binary + default config: migrate with the installed sql/ exits 0" "$rc" 0
    [[ $rc == 0 ]] || tap_diag "$out"
    tap_is "every installed migration applied" \
        "$(sk_sql "$db" "SELECT COUNT(*) FROM schema_migrations")" \
        "$(ls "$root"/usr/share/scorekeeper/sql/[0-9][0-9][0-9]_*.sql | wc -l)"
else
    tap_skip "installed binary + default config: migrate with the installed sql/" "needs the private stack's admin socket"
fi

# Uninstall: everything install created goes, the operator's config stays.
if out=$(mk uninstall DESTDIR="$root" PREFIX=/usr); then
    tap_ok "make uninstall DESTDIR=… PREFIX=/usr"
else
    tap_fail "make uninstall DESTDIR=… PREFIX=/usr" "$out"
fi
tap_is "after uninstall only the operator's config is left" "$(files_of "$root")" \
    "etc/scorekeeper/scorekeeper.conf"
tap_check "after uninstall the config still holds the operator's line" \
    grep -qx 'db.url = mariadb://marker@db/operator' "$conf"
tap_check "after uninstall share/scorekeeper/ is gone" test ! -e "$root/usr/share/scorekeeper"

# Default PREFIX: /usr/local, and the binary follows it.
root2=$SK_TEST_TMP/root2
if out=$(mk install DESTDIR="$root2"); then
    tap_ok "make install DESTDIR=… (default PREFIX)"
else
    tap_fail "make install DESTDIR=… (default PREFIX)" "$out"
fi
tap_is "default PREFIX is /usr/local; config still under /etc" "$(files_of "$root2")" \
    "$(sed -e 's|^usr/|usr/local/|' <<<"$expected" | LC_ALL=C sort)"
tap_is "default PREFIX: sql.dir default follows it" \
    "$("$root2/usr/local/bin/scorekeeper" --help | grep '^  sql\.dir ')" \
    "  sql.dir  (text; default /usr/local/share/scorekeeper/sql)"
tap_is "default PREFIX: units name /usr/local/bin" \
    "$(grep -h '^ExecStart=' "$root2"/usr/local/lib/systemd/system/*.service | cut -d' ' -f1 | sort -u)" \
    "ExecStart=/usr/local/bin/scorekeeper"
mk uninstall DESTDIR="$root2" >/dev/null || true
tap_is "default PREFIX: uninstall leaves only the config" "$(files_of "$root2")" \
    "etc/scorekeeper/scorekeeper.conf"

tap_done
