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
