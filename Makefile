# scorekeeper — build, test and run.  `make help` lists the targets.
#
# Objects of the plain build live in build/obj, those of the sanitizer build
# (SANITIZE=1: ASan+UBSan, what `make check` uses) in build/san, so the two
# never mix and switching between them rebuilds nothing needlessly.

CC       := gcc
PKGS     := rdkafka libmariadb libcjson libsystemd libmicrohttpd libssl libcrypto
VERSION  := $(shell cat VERSION 2>/dev/null || echo 0.0.0)

# Warnings are errors in the project's own builds; a build with another
# compiler than the one the code was written for (the Debian package's,
# debian/rules) passes WERROR= so that a new warning does not fail it.
WERROR   ?= -Werror
WARN     := -Wall -Wextra $(WERROR) -Wshadow -Wconversion -Wformat=2 \
            -Wstrict-prototypes -Wmissing-prototypes -Wold-style-definition \
            -Wvla -Wnull-dereference -Wdouble-promotion -Wcast-qual \
            -Wundef -Wpointer-arith -Wimplicit-fallthrough
CPPFLAGS += -iquote include -D_GNU_SOURCE -DSK_VERSION='"$(VERSION)"'
CFLAGS   ?= -O2 -g
CFLAGS   += -std=c17 $(WARN) -fno-strict-aliasing -fstack-protector-strong \
            $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
LDLIBS   += $(shell pkg-config --libs $(PKGS) 2>/dev/null) -lm

ifeq ($(SANITIZE),1)
  BUILD   := build/san
  CFLAGS  += -O1 -fsanitize=address,undefined -fno-omit-frame-pointer \
             -fno-sanitize-recover=undefined
  LDFLAGS += -fsanitize=address,undefined
else
  BUILD   := build
  CPPFLAGS += -D_FORTIFY_SOURCE=2
endif
OBJ      := $(BUILD)/obj

SRCS      := $(sort $(wildcard src/*.c))
MAIN_OBJ  := $(OBJ)/main.o
LIB_OBJS  := $(filter-out $(MAIN_OBJ),$(SRCS:src/%.c=$(OBJ)/%.o))
UNIT_SRCS := $(sort $(wildcard tests/unit/test_*.c))
UNIT_BINS := $(UNIT_SRCS:tests/unit/%.c=$(BUILD)/tests/%)
TOOL_SRCS := $(sort $(wildcard tests/tools/*.c))
TOOL_BINS := $(TOOL_SRCS:tests/tools/%.c=$(BUILD)/tools/%)

.PHONY: all help deps build-deps stack-up stack-down check unit demo clean tests install uninstall deb
all: $(BUILD)/scorekeeper

help:
	@echo "make            build build/scorekeeper"
	@echo "make SANITIZE=1 build with ASan+UBSan into build/san/"
	@echo "make deps       install the Debian packages needed to build, test and demo"
	@echo "make build-deps install only those needed to build and install the daemon"
	@echo "make stack-up   start a private Kafka broker and MariaDB server (build/stack.env)"
	@echo "make stack-down stop them and remove their data"
	@echo "make check      build with sanitizers and run every test"
	@echo "make demo       run the daemon on the local stack with a scripted quiz"
	@echo "make install    install binary, units, man pages, sql/, schemas/, default config"
	@echo "                (PREFIX=/usr/local DESTDIR= SYSCONFDIR=/etc UNITDIR=PREFIX/lib/systemd/system)"
	@echo "make uninstall  remove what make install installed (never the operator's config)"
	@echo "make deb        the Debian package (dpkg-buildpackage -us -uc -b), in build/deb/"
	@echo "make bench      benchmark the -O2 build (build/bench/results.md)"

$(BUILD)/scorekeeper: $(MAIN_OBJ) $(LIB_OBJS)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(OBJ)/%.o: src/%.c | $(OBJ)
	$(CC) $(CPPFLAGS) $(CFLAGS) -MMD -MP -c -o $@ $<

$(BUILD)/tests/%: tests/unit/%.c $(LIB_OBJS) | $(BUILD)/tests
	$(CC) $(CPPFLAGS) $(CFLAGS) -MMD -MP $(LDFLAGS) -o $@ $< $(LIB_OBJS) \
	    $(LDLIBS) $(shell pkg-config --libs cmocka 2>/dev/null)

$(BUILD)/tools/%: tests/tools/%.c $(LIB_OBJS) | $(BUILD)/tools
	$(CC) $(CPPFLAGS) $(CFLAGS) -MMD -MP $(LDFLAGS) -o $@ $< $(LIB_OBJS) $(LDLIBS)

$(OBJ) $(BUILD)/tests $(BUILD)/tools:
	@mkdir -p $@

# Everything the test suite runs: the daemon, unit tests and test tools.
tests: $(BUILD)/scorekeeper $(UNIT_BINS) $(TOOL_BINS)

unit: $(UNIT_BINS)
	@rc=0; for t in $(UNIT_BINS); do $$t || rc=1; done; exit $$rc

deps:
	@tests/tools/deps.sh

build-deps:
	@tests/tools/deps.sh build

stack-up:
	@tests/stack/stack-up.sh

stack-down:
	@tests/stack/stack-down.sh

check:
	@tests/run.sh

demo:
	@tests/demo/demo.sh

clean:
	rm -rf build/obj build/san build/tests build/tools build/scorekeeper build/install build/deb

# ------------------------------------------------------------------ install
# make install [PREFIX=/usr/local] [DESTDIR=] [SYSCONFDIR=/etc] [UNITDIR=...]
#
# The installed binary is build/install/scorekeeper.  It differs from the
# developer build (build/scorekeeper) in one thing: its default sql.dir is
# $(DATADIR)/sql instead of "sql" (relative, for in-tree runs).  Only
# src/config.c reads SK_SQL_DIR, so only it is compiled again, into
# build/install/config.o; every other object is the plain build's.
# build/install/sql-dir holds the directory compiled in, so a different
# PREFIX recompiles it.  DESTDIR is a staging root: never compiled in.
#
# Units and the default configuration are templates: @bindir@ and
# @sysconfdir@ are replaced while installing.  The configuration is not
# overwritten when it exists; the new one goes next to it as
# scorekeeper.conf.example.  It is mode 0644 because the service runs as a
# DynamicUser= that must read it: secrets go into credentials, not there.
PREFIX     ?= /usr/local
BINDIR     ?= $(PREFIX)/bin
DATADIR    ?= $(PREFIX)/share/scorekeeper
MANDIR     ?= $(PREFIX)/share/man
UNITDIR    ?= $(PREFIX)/lib/systemd/system
SYSCONFDIR ?= /etc
CONFDIR    := $(SYSCONFDIR)/scorekeeper
INST       := build/install

INST_SQL      := $(sort $(wildcard sql/*.sql))
INST_SCHEMAS  := $(sort $(wildcard schemas/*.json)) schemas/README.md
INST_UNITS    := systemd/scorekeeper.service systemd/scorekeeper@.service
INST_MAN8     := man/scorekeeper.8
INST_MAN5     := man/scorekeeper.conf.5

$(INST):
	@mkdir -p $@

# Rewritten only when the directory changes, so config.o is rebuilt only then.
$(INST)/sql-dir: FORCE | $(INST)
	@printf '%s\n' '$(DATADIR)/sql' | cmp -s - $@ || printf '%s\n' '$(DATADIR)/sql' >$@

$(INST)/config.o: src/config.c $(INST)/sql-dir | $(INST)
	$(CC) $(CPPFLAGS) -DSK_SQL_DIR='"$(DATADIR)/sql"' $(CFLAGS) -MMD -MP -c -o $@ $<

$(INST)/scorekeeper: $(MAIN_OBJ) $(filter-out $(OBJ)/config.o,$(LIB_OBJS)) $(INST)/config.o
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

SUBST = sed -e 's|@bindir@|$(BINDIR)|g' -e 's|@sysconfdir@|$(SYSCONFDIR)|g' -e 's|@datadir@|$(DATADIR)|g'

install: $(INST)/scorekeeper
ifeq ($(SANITIZE),1)
	$(error make install installs the plain build; run it without SANITIZE=1)
endif
	install -d $(DESTDIR)$(BINDIR) $(DESTDIR)$(UNITDIR) $(DESTDIR)$(DATADIR)/sql \
	    $(DESTDIR)$(DATADIR)/schemas $(DESTDIR)$(MANDIR)/man8 $(DESTDIR)$(MANDIR)/man5 \
	    $(DESTDIR)$(CONFDIR)
	install -m 0755 $(INST)/scorekeeper $(DESTDIR)$(BINDIR)/scorekeeper
	for u in $(INST_UNITS); do \
	    $(SUBST) $$u >$(DESTDIR)$(UNITDIR)/$${u##*/}.tmp && \
	    chmod 0644 $(DESTDIR)$(UNITDIR)/$${u##*/}.tmp && \
	    mv -f $(DESTDIR)$(UNITDIR)/$${u##*/}.tmp $(DESTDIR)$(UNITDIR)/$${u##*/} || exit 1; \
	done
	install -m 0644 $(INST_SQL) $(DESTDIR)$(DATADIR)/sql/
	install -m 0644 $(INST_SCHEMAS) $(DESTDIR)$(DATADIR)/schemas/
	install -m 0644 $(INST_MAN8) $(DESTDIR)$(MANDIR)/man8/
	install -m 0644 $(INST_MAN5) $(DESTDIR)$(MANDIR)/man5/
	@conf=$(DESTDIR)$(CONFDIR)/scorekeeper.conf; \
	if [ -e "$$conf" ]; then \
	    echo "$$conf exists: not overwritten; the new default is $$conf.example"; \
	    conf=$$conf.example; \
	fi; \
	$(SUBST) systemd/scorekeeper.conf >"$$conf.tmp" && chmod 0644 "$$conf.tmp" && \
	    mv -f "$$conf.tmp" "$$conf"

uninstall:
	rm -f $(DESTDIR)$(BINDIR)/scorekeeper
	rm -f $(addprefix $(DESTDIR)$(UNITDIR)/,$(notdir $(INST_UNITS)))
	rm -f $(addprefix $(DESTDIR)$(DATADIR)/sql/,$(notdir $(INST_SQL)))
	rm -f $(addprefix $(DESTDIR)$(DATADIR)/schemas/,$(notdir $(INST_SCHEMAS)))
	rm -f $(DESTDIR)$(MANDIR)/man8/$(notdir $(INST_MAN8)) \
	    $(DESTDIR)$(MANDIR)/man5/$(notdir $(INST_MAN5))
	rm -f $(DESTDIR)$(CONFDIR)/scorekeeper.conf.example
	rmdir $(DESTDIR)$(DATADIR)/sql $(DESTDIR)$(DATADIR)/schemas $(DESTDIR)$(DATADIR) 2>/dev/null || true
	@if [ -e $(DESTDIR)$(CONFDIR)/scorekeeper.conf ]; then \
	    echo "kept $(DESTDIR)$(CONFDIR)/scorekeeper.conf and anything else in $(DESTDIR)$(CONFDIR) (yours)"; \
	fi

.PHONY: FORCE
FORCE:

# -------------------------------------------------------------------- deb
# make deb: the Debian package (debian/), built by `dpkg-buildpackage -us
# -uc -b` from a copy of the source tree in build/deb/src, so that the
# package build shares no object with this tree's builds; the .deb lands in
# build/deb/.  The copy is of the files git knows, committed or not (the
# whole tree but build/ without git), less the tests and documents the
# package does not use.  Built again only when one of them is newer than
# the .deb, so tests 41 and 42 share one build.  Computed only
# when asked for: dpkg-parsechangelog is slow to run on every make.
ifneq ($(filter deb,$(MAKECMDGOALS)),)
DEB_DIR     := build/deb
DEB_VERSION := $(shell dpkg-parsechangelog -l debian/changelog -S Version)
DEB_ARCH    := $(shell dpkg --print-architecture)
DEB         := $(DEB_DIR)/scorekeeper_$(DEB_VERSION)_$(DEB_ARCH).deb
DEB_SOURCES := $(filter-out tests/% docs/% .ci/% README.md,$(patsubst ./%,%,$(wildcard \
                   $(shell git ls-files --cached --others --exclude-standard 2>/dev/null || \
                   find . -path ./build -prune -o -type f -print))))
deb: $(DEB)

$(DEB): $(DEB_SOURCES)
	@command -v dh >/dev/null || { echo "make deb: debhelper is missing (make deps installs it)" >&2; exit 1; }
	@rm -rf $(DEB_DIR)
	@mkdir -p $(DEB_DIR)/src
	@echo "copying $(words $(DEB_SOURCES)) files to $(DEB_DIR)/src"
	@tar -cf - $(DEB_SOURCES) | tar -C $(DEB_DIR)/src -xf -
	cd $(DEB_DIR)/src && dpkg-buildpackage -us -uc -b -Jauto >../build.log 2>&1 || \
	    { tail -n 40 ../build.log >&2; echo "make deb: failed, full log: $(DEB_DIR)/build.log" >&2; exit 1; }
	@test -f $@ || { echo "make deb: dpkg-buildpackage made no $@" >&2; exit 1; }
	@echo "$@"
endif

-include $(wildcard $(OBJ)/*.d $(BUILD)/tests/*.d $(BUILD)/tools/*.d $(INST)/*.d)
-include $(wildcard $(OBJ)/*.d $(BUILD)/tests/*.d $(BUILD)/tools/*.d)

# ------------------------------------------------------------------- fuzz
# `make fuzz`: the libFuzzer target for the event parser and validator
# (tests/fuzz/README.md).  Built by clang with its own objects in
# build/fuzz/obj, only the modules the target needs; seeded from
# schemas/examples and tests/fuzz/regressions; runs FUZZ_RUNS inputs from
# the fixed FUZZ_SEED and fails on any finding (crash files: build/fuzz/).
FUZZ_CC      ?= clang
FUZZ_RUNS    ?= 200000
FUZZ_SEED    ?= 1
FUZZ_MAX_LEN ?= 4096
FUZZ_FLAGS   ?=
FUZZ_DIR     := build/fuzz
FUZZ_OBJ     := $(FUZZ_DIR)/obj
FUZZ_SAN     := -fsanitize=address,undefined -fno-sanitize-recover=undefined \
                -fno-omit-frame-pointer
FUZZ_CFLAGS  := -std=c17 $(WARN) -O1 -g $(FUZZ_SAN) -fsanitize=fuzzer-no-link \
                -Iinclude -Itests/fuzz -D_GNU_SOURCE $(shell pkg-config --cflags libcjson 2>/dev/null)
FUZZ_LIBS    := $(shell pkg-config --libs libcjson 2>/dev/null)
FUZZ_OBJS    := $(patsubst %,$(FUZZ_OBJ)/%.o,event jsonscan utf8 result buf fuzz_check)

.PHONY: fuzz fuzz-build fuzz-clean
fuzz-build: $(FUZZ_DIR)/fuzz_event $(FUZZ_DIR)/mkcorpus

fuzz: fuzz-build
	@rm -rf $(FUZZ_DIR)/corpus $(FUZZ_DIR)/new
	@mkdir -p $(FUZZ_DIR)/corpus $(FUZZ_DIR)/new
	$(FUZZ_DIR)/mkcorpus schemas/examples $(FUZZ_DIR)/corpus
	find tests/fuzz/regressions -maxdepth 1 -type f ! -name 'README*' ! -name '.*' \
	    -exec cp {} $(FUZZ_DIR)/corpus/ \;
	$(FUZZ_DIR)/fuzz_event -runs=$(FUZZ_RUNS) -seed=$(FUZZ_SEED) -max_len=$(FUZZ_MAX_LEN) \
	    -timeout=10 -dict=tests/fuzz/event.dict -artifact_prefix=$(FUZZ_DIR)/ \
	    -print_final_stats=1 $(FUZZ_FLAGS) $(FUZZ_DIR)/new $(FUZZ_DIR)/corpus

$(FUZZ_OBJ)/%.o: src/%.c | $(FUZZ_OBJ)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -MMD -MP -c -o $@ $<

$(FUZZ_OBJ)/%.o: tests/fuzz/%.c | $(FUZZ_OBJ)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -MMD -MP -c -o $@ $<

$(FUZZ_DIR)/fuzz_event: $(FUZZ_OBJ)/fuzz_event.o $(FUZZ_OBJS)
	$(FUZZ_CC) -fsanitize=fuzzer $(FUZZ_SAN) -o $@ $^ $(FUZZ_LIBS)

$(FUZZ_DIR)/mkcorpus: $(FUZZ_OBJ)/mkcorpus.o $(FUZZ_OBJS)
	$(FUZZ_CC) $(FUZZ_SAN) -o $@ $^ $(FUZZ_LIBS)

$(FUZZ_OBJ):
	@mkdir -p $@

fuzz-clean:
	rm -rf $(FUZZ_DIR)

-include $(wildcard $(FUZZ_OBJ)/*.d)
# ------------------------------------------------------------------ benchmark
# make bench: throughput, latency, ceiling, sweep, profile on the local stack;
# writes build/bench/results.md.  Sizes: BENCH_* variables, see
# tests/bench/README.md.  Always the plain -O2 build, never the sanitizer one.
.PHONY: bench
bench:
	@$(MAKE) --no-print-directory SANITIZE= build/scorekeeper build/tools/loadgen build/tools/mktopic build/tools/sqlpace
	@tests/bench/bench.sh
# ------------------------------------------------------------------ soak
# The fault suite (tests/integration/5N-fault-*.sh) in its long form: bigger
# streams and more faults per scenario (SOAK=1).  `make check` runs the fast
# form of the same tests.  Each test may take many minutes.
.PHONY: soak
soak:
	@SOAK=1 T='5[0-9]-fault-*' SK_TEST_TIMEOUT=$${SK_TEST_TIMEOUT:-1800} tests/run.sh
