# scorekeeper — build, test and run.  `make help` lists the targets.
#
# Objects of the plain build live in build/obj, those of the sanitizer build
# (SANITIZE=1: ASan+UBSan, what `make check` uses) in build/san, so the two
# never mix and switching between them rebuilds nothing needlessly.

CC       := gcc
PKGS     := rdkafka libmariadb libcjson libsystemd
VERSION  := $(shell cat VERSION 2>/dev/null || echo 0.0.0)

WARN     := -Wall -Wextra -Werror -Wshadow -Wconversion -Wformat=2 \
            -Wstrict-prototypes -Wmissing-prototypes -Wold-style-definition \
            -Wvla -Wnull-dereference -Wdouble-promotion -Wcast-qual \
            -Wundef -Wpointer-arith -Wimplicit-fallthrough
CPPFLAGS += -Iinclude -D_GNU_SOURCE -DSK_VERSION='"$(VERSION)"'
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

.PHONY: all help deps stack-up stack-down check unit demo clean tests
all: $(BUILD)/scorekeeper

help:
	@echo "make            build build/scorekeeper"
	@echo "make SANITIZE=1 build with ASan+UBSan into build/san/"
	@echo "make deps       install the Debian packages needed to build, test and demo"
	@echo "make stack-up   start a private Kafka broker and MariaDB server (build/stack.env)"
	@echo "make stack-down stop them and remove their data"
	@echo "make check      build with sanitizers and run every test"
	@echo "make demo       run the daemon on the local stack with a scripted quiz"

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

stack-up:
	@tests/stack/stack-up.sh

stack-down:
	@tests/stack/stack-down.sh

check:
	@tests/run.sh

demo:
	@tests/demo/demo.sh

clean:
	rm -rf build/obj build/san build/tests build/tools build/scorekeeper

-include $(wildcard $(OBJ)/*.d $(BUILD)/tests/*.d $(BUILD)/tools/*.d)

# ------------------------------------------------------------------ soak
# The fault suite (tests/integration/5N-fault-*.sh) in its long form: bigger
# streams and more faults per scenario (SOAK=1).  `make check` runs the fast
# form of the same tests.  Each test may take many minutes.
.PHONY: soak
soak:
	@SOAK=1 T='5[0-9]-fault-*' SK_TEST_TIMEOUT=$${SK_TEST_TIMEOUT:-1800} tests/run.sh
