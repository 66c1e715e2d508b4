# Vigie — build, test, bench.
#
#   make            release build: build/vigied, build/vigie, build/libvigie.a
#   make test       install deps, build with ASan+UBSan (LeakSanitizer on),
#                   run every Criterion suite
#   make run        install deps, build, load the bundled sample data, serve
#   make bench      release build of the benchmark, run it (prints the table)
#   make debug      -O0 -g build into build/debug/
#   make format / make lint
#
# Flavours live in separate object trees so switching never mixes objects.

CC      ?= cc
PKGS    := libuv lmdb lua5.4 libcjson libcsv libcurl sqlite3
# libcsv, lmdb and http-parser ship no .pc file on Debian 12: fall back to plain -l flags.
PC_CFLAGS := $(shell pkg-config --cflags libuv lua5.4 libcjson libcurl libzip expat 2>/dev/null)
PC_LIBS   := $(shell pkg-config --libs libuv lua5.4 libcjson libcurl libzip expat 2>/dev/null)
# http-parser ships no .pc file either.
DEP_LIBS  := $(PC_LIBS) -llmdb -lcsv -lhttp_parser -lm -lpthread

WARN    := -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes \
           -Wmissing-prototypes -Wno-unused-parameter
BASE    := -std=c11 -D_GNU_SOURCE -Iinclude -Icore $(PC_CFLAGS) $(WARN) \
           -fvisibility=hidden -MMD -MP

FLAVOUR ?= release
# BUILD_ROOT (relative) lets two checkouts' worth of work build side by side
# in one tree without racing on the same objects (make BUILD_ROOT=build-x).
BUILD_ROOT ?= build
ifeq ($(FLAVOUR),release)
  OPT := -O2 -g -DNDEBUG
  OUT := $(BUILD_ROOT)
endif
ifeq ($(FLAVOUR),debug)
  OPT := -O0 -g
  OUT := $(BUILD_ROOT)/debug
endif
ifeq ($(FLAVOUR),san)
  OPT := -O1 -g -fno-omit-frame-pointer -fsanitize=address,undefined \
         -fno-sanitize-recover=undefined
  OUT := $(BUILD_ROOT)/san
endif
ifeq ($(FLAVOUR),fuzz)
  CC  := clang
  OPT := -O1 -g -fno-omit-frame-pointer -fsanitize=address,undefined,fuzzer-no-link
  OUT := $(BUILD_ROOT)/fuzz
endif
CFLAGS  ?=
CFLAGS  += $(BASE) $(OPT)
LDFLAGS += $(filter -fsanitize=%,$(OPT))

CORE_SRC := $(shell find core -name '*.c' -not -path 'core/cmd/*' | sort)
CORE_OBJ := $(CORE_SRC:%.c=$(OUT)/obj/%.o)
LIB      := $(OUT)/libvigie.a
# Helpers of the two programs (output formatting...), not part of the lib.
CMD_SRC  := $(filter-out core/cmd/vigie.c core/cmd/vigied.c,$(wildcard core/cmd/*.c))
CMD_OBJ  := $(CMD_SRC:%.c=$(OUT)/obj/%.o)

UNIT_SRC := $(sort $(wildcard tests/unit/test_*.c))
UNIT_BIN := $(UNIT_SRC:tests/unit/%.c=$(OUT)/tests/%)
INTEG_SRC := $(sort $(wildcard tests/integration/test_*.c))
INTEG_BIN := $(INTEG_SRC:tests/integration/test_%.c=$(OUT)/tests/itest_%)

.PHONY: all debug san test run bench deps format lint clean check-asserts fuzz

all: $(OUT)/vigie $(OUT)/vigied $(LIB)

debug:
	@$(MAKE) --no-print-directory FLAVOUR=debug all
san:
	@$(MAKE) --no-print-directory FLAVOUR=san all

$(OUT)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -c $< -o $@

$(LIB): $(CORE_OBJ)
	@mkdir -p $(dir $@)
	rm -f $@
	ar rcs $@ $^

$(OUT)/vigie: $(OUT)/obj/core/cmd/vigie.o $(CMD_OBJ) $(LIB)
	$(CC) $(LDFLAGS) -o $@ $^ $(DEP_LIBS)
$(OUT)/vigied: $(OUT)/obj/core/cmd/vigied.o $(CMD_OBJ) $(LIB)
	$(CC) $(LDFLAGS) -o $@ $^ $(DEP_LIBS)

$(OUT)/tests/test_%: $(OUT)/obj/tests/unit/test_%.o $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(DEP_LIBS) -lcriterion
$(OUT)/tests/itest_%: $(OUT)/obj/tests/integration/test_%.o $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(DEP_LIBS) -lcriterion

$(OUT)/bench_store: $(OUT)/obj/tests/bench/bench_store.o $(LIB)
	$(CC) $(LDFLAGS) -o $@ $^ $(DEP_LIBS) -lsqlite3
$(OUT)/bench_daemon: $(OUT)/obj/tests/bench/bench_daemon.o
	$(CC) $(LDFLAGS) -o $@ $^ -lpthread

# libFuzzer on the request parser and dispatcher (clang). make test runs
# it for FUZZ_SECS; `make fuzz FUZZ_SECS=600` for longer.
FUZZ_SECS ?= 20
$(OUT)/fuzz_request: $(OUT)/obj/tests/fuzz/fuzz_request.o $(LIB)
	$(CC) -fsanitize=address,undefined,fuzzer -o $@ $^ $(DEP_LIBS)
fuzz: deps
	@$(MAKE) --no-print-directory FLAVOUR=fuzz $(BUILD_ROOT)/fuzz/fuzz_request
	@mkdir -p $(BUILD_ROOT)/fuzz/corpus
	VIGIE_ROOT=$(CURDIR) ASAN_OPTIONS=detect_leaks=1 \
	  $(BUILD_ROOT)/fuzz/fuzz_request -max_total_time=$(FUZZ_SECS) \
	  -max_len=4096 -print_final_stats=1 $(BUILD_ROOT)/fuzz/corpus \
	  tests/fuzz/corpus

$(OUT)/bench_plugin: $(OUT)/obj/tests/bench/bench_plugin.o $(LIB)
	$(CC) $(LDFLAGS) -o $@ $^ $(DEP_LIBS) -lsqlite3

deps:
	@bash scripts/install-deps.sh

# Tests run under AddressSanitizer, UndefinedBehaviorSanitizer and
# LeakSanitizer (part of ASan on x86-64): a leak or UB fails the suite.
TEST_ENV := ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
            UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
            VIGIE_SHARED=$(abspath ../shared) VIGIE_ROOT=$(CURDIR)

test: deps
	@$(MAKE) --no-print-directory FLAVOUR=san check-asserts lint tests-build
	@$(MAKE) --no-print-directory FLAVOUR=release all
	@$(MAKE) --no-print-directory FLAVOUR=san tests-run
	@$(MAKE) --no-print-directory fuzz

.PHONY: tests-build tests-run
tests-build: $(UNIT_BIN) $(INTEG_BIN) $(OUT)/vigie $(OUT)/vigied
tests-run: tests-build
	@fail=0; total=0; \
	for t in $(UNIT_BIN) $(INTEG_BIN); do \
	  total=$$((total+1)); \
	  echo "== $$t"; \
	  $(TEST_ENV) VIGIE_BIN=$(CURDIR)/$(OUT) $$t --jobs 2 || fail=$$((fail+1)); \
	done; \
	for t in tests/cli/*.sh tests/integration/*.sh; do \
	  [ -f "$$t" ] || continue; total=$$((total+1)); echo "== $$t"; \
	  $(TEST_ENV) VIGIE=$(CURDIR)/$(OUT)/vigie VIGIED=$(CURDIR)/$(OUT)/vigied \
	    bash $$t || fail=$$((fail+1)); \
	done; \
	echo "suites: $$((total-fail)) passed, $$fail failed"; \
	[ $$fail -eq 0 ]

# core/ uses VG_ASSERT / VG_FAILS_ASSERT, never a bare assert().
check-asserts:
	@! grep -rnE '^[[:space:]]*assert\(' core include || \
	  (echo "bare assert() found: use VG_ASSERT"; exit 1)

run: deps
	@$(MAKE) --no-print-directory FLAVOUR=release all
	@bash scripts/run.sh

BENCH_DATA := $(BUILD_ROOT)/bench-data
bench: deps
	@$(MAKE) --no-print-directory FLAVOUR=release all $(OUT)/bench_store \
	  $(OUT)/bench_daemon $(OUT)/bench_plugin
	$(OUT)/bench_store $(BENCH_ARGS)
	$(OUT)/bench_plugin
	@rm -rf $(BENCH_DATA) && mkdir -p $(BENCH_DATA)
	@$(OUT)/vigie --data $(BENCH_DATA) import territories \
	  tests/fixtures/real/territories_cog2024.csv 2>/dev/null
	@$(OUT)/vigie --data $(BENCH_DATA) import indicators \
	  tests/fixtures/real/indicators.json 2>/dev/null
	@$(OUT)/vigie --data $(BENCH_DATA) import points \
	  tests/fixtures/real/population_2022.csv 2>/dev/null
	$(OUT)/bench_daemon $(OUT)/vigied $(BENCH_DATA) $(BENCH_DAEMON_SECS)

format:
	clang-format -i $$(find core include tests -name '*.[ch]')
lint:
	cppcheck --quiet --error-exitcode=1 --enable=warning,performance,portability \
	  --std=c11 --inline-suppr -Iinclude -Icore core

clean:
	rm -rf $(BUILD_ROOT)

-include $(shell find $(BUILD_ROOT) -name '*.d' 2>/dev/null)
