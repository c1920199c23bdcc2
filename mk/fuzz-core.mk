# SPDX-License-Identifier: MIT
# Fuzzing the device engine (tests/fuzz/core, FUZZING.md). make fuzz runs a
# libFuzzer campaign (clang); make fuzz-core-replay replays the committed
# corpus and crash inputs with any compiler; make fuzz-core-smoke is a short
# fixed-count libFuzzer run; make coverage reports the engine's line coverage
# from the unit tests and the corpus; make fuzz-core-seeds records new seeds
# from the conformance suite. FUZZ_CORE_CHECK_ARGS is what make check passes to
# tests/run-suites.sh to replay the corpus and run the smoke test.

FUZZ_CORE_DIR := tests/fuzz/core
FUZZ_CORE_OUT := build/fuzz/core
FUZZ_CORE_CC ?= clang
FUZZ_CORE_SANITIZE ?= address,undefined
FUZZ_TIME ?= 600
FUZZ_JOBS ?= 2
# Input lengths: short inputs (a dozen operations) run eight times as many
# per second and reach the same edges; long ones reach states that take
# hundreds of operations (a handle slot reused 512 times). A campaign runs
# both: every second process takes FUZZ_CORE_DEEP_LEN (campaign.sh).
FUZZ_CORE_MAX_LEN ?= 128
FUZZ_CORE_DEEP_LEN ?= 4096
FUZZ_CORE_SMOKE_RUNS ?= 20000
FUZZ_CORE_ARGS ?=
FUZZ_CORE_CORPUS := $(FUZZ_CORE_DIR)/corpus
FUZZ_CORE_CRASHES := $(FUZZ_CORE_DIR)/crashes
# The harness: fuzz_core.c runs one input, fz_*.c are its parts (fz.h).
FUZZ_CORE_SRC := $(FUZZ_CORE_DIR)/fuzz_core.c $(sort $(wildcard $(FUZZ_CORE_DIR)/fz_*.c))
# ASan for campaigns: stop at the first report (libFuzzer keeps the input);
# leaks are engine bugs too; a 1 MiB quarantine instead of 256 MiB: an
# engine's allocations live one input, far less than that, and recycled
# memory that is still in the cache makes each input an eighth cheaper.
FUZZ_CORE_ASAN_OPTIONS ?= abort_on_error=1:detect_leaks=1:quarantine_size_mb=1

# The engine is the target: ASan, UBSan and coverage instrumentation. The
# harness (the guest and the model) gets UBSan only, and no coverage, so that
# its per-step model checks neither cost trace callbacks nor count as
# coverage, and cost a fifth less per input without ASan's checks. Every
# buffer the engine is handed is a heap block or its own (fuzz_core.c), so
# ASan still sees the engine step outside one; fuzz_core_replay, which make
# check runs, builds the harness with ASan too.
FUZZ_CORE_CFLAGS := -std=c11 -O1 -g -fno-omit-frame-pointer $(WARN) -Iprotocol -Ihw-device/core \
	-fno-sanitize-recover=all -MMD -MP
FUZZ_CORE_HARNESS_SANITIZE ?= undefined

$(FUZZ_CORE_OUT)/obj/hw-device/core/%.o: hw-device/core/%.c | check-config
	@mkdir -p $(@D)
	$(FUZZ_CORE_CC) $(FUZZ_CORE_CFLAGS) -fsanitize=$(FUZZ_CORE_SANITIZE),fuzzer-no-link -c $< -o $@

$(FUZZ_CORE_OUT)/obj/$(FUZZ_CORE_DIR)/%.o: $(FUZZ_CORE_DIR)/%.c | check-config
	@mkdir -p $(@D)
	$(FUZZ_CORE_CC) $(FUZZ_CORE_CFLAGS) -fsanitize=$(FUZZ_CORE_HARNESS_SANITIZE) -c $< -o $@

$(FUZZ_CORE_OUT)/fuzz_core: $(FUZZ_CORE_SRC:%.c=$(FUZZ_CORE_OUT)/obj/%.o) $(CORE_SRC:%.c=$(FUZZ_CORE_OUT)/obj/%.o)
	$(FUZZ_CORE_CC) -fsanitize=fuzzer,$(FUZZ_CORE_SANITIZE) -o $@ $^

# The same harness with a standalone main, built by $(CC) into the ASan+UBSan
# variant of the main build (reusing its engine objects).
$(FUZZ_CORE_OUT)/fuzz_core_replay: $(FUZZ_CORE_SRC:%.c=build/asan/obj/%.o) \
		build/asan/obj/$(FUZZ_CORE_DIR)/replay_main.o $(CORE_SRC:%.c=build/asan/obj/%.o)
	@mkdir -p $(@D)
	$(CC) $(SAN_CFLAGS) -o $@ $^

# Whether $(FUZZ_CORE_CC) links libFuzzer (Debian: libclang-rt-14-dev). A shell
# command, so that it costs nothing unless a recipe asks.
FUZZ_CORE_HAVE_LIBFUZZER = printf 'int LLVMFuzzerTestOneInput(const char *d, unsigned long n) { return 0; }\n' | \
	$(FUZZ_CORE_CC) -fsanitize=fuzzer -x c - -o /dev/null >/dev/null 2>&1
FUZZ_CORE_NO_LIBFUZZER = $(FUZZ_CORE_CC) cannot link libFuzzer (-fsanitize=fuzzer; on Debian: apt-get install clang libclang-rt-14-dev)

.PHONY: fuzz fuzz-core-replay fuzz-core-smoke fuzz-core-check-build fuzz-core-seeds \
	fuzz-core-distill coverage

# A campaign: FUZZ_JOBS processes for FUZZ_TIME seconds (campaign.sh), new
# inputs in build/fuzz/core/corpus, crashes in build/fuzz/core/crashes; the
# committed seeds are only read.
fuzz: $(FUZZ_CORE_OUT)/fuzz_core
	@ASAN_OPTIONS=$(FUZZ_CORE_ASAN_OPTIONS) CAMPAIGN_EVEN_FLAGS=-max_len=$(FUZZ_CORE_DEEP_LEN) \
		$(FUZZ_CORE_DIR)/campaign.sh $(FUZZ_CORE_OUT)/fuzz_core \
		$(FUZZ_CORE_OUT) $(FUZZ_TIME) $(FUZZ_JOBS) $(FUZZ_CORE_CORPUS) \
		-max_len=$(FUZZ_CORE_MAX_LEN) -dict=$(FUZZ_CORE_DIR)/vkmt.dict $(FUZZ_CORE_ARGS)

fuzz-core-replay: $(FUZZ_CORE_OUT)/fuzz_core_replay
	$(FUZZ_CORE_OUT)/fuzz_core_replay $(FUZZ_CORE_CORPUS) $(FUZZ_CORE_CRASHES)

fuzz-core-smoke: fuzz-core-check-build
	@FUZZ_CORE_SMOKE_RUNS=$(FUZZ_CORE_SMOKE_RUNS) $(FUZZ_CORE_DIR)/smoke.sh $(FUZZ_CORE_OUT)/fuzz_core \
		$(FUZZ_CORE_CORPUS)

# Builds the replay binary, and the libFuzzer binary where clang can link it.
fuzz-core-check-build: $(FUZZ_CORE_OUT)/fuzz_core_replay
	@if $(FUZZ_CORE_HAVE_LIBFUZZER); then \
		$(MAKE) --no-print-directory $(FUZZ_CORE_OUT)/fuzz_core; \
	else \
		echo "fuzz: no smoke run: $(FUZZ_CORE_NO_LIBFUZZER)"; rm -f $(FUZZ_CORE_OUT)/fuzz_core; \
	fi

check-build: fuzz-core-check-build

# make check: tests/run-suites.sh ... $(FUZZ_CORE_CHECK_ARGS) -- ...: one test per
# corpus and crash input, and the smoke run (one test; skipped without
# libFuzzer).
FUZZ_CORE_CHECK_ARGS := --replay $(FUZZ_CORE_OUT)/fuzz_core_replay $(FUZZ_CORE_CORPUS) $(FUZZ_CORE_CRASHES) \
	--replay $(FUZZ_CORE_DIR)/smoke.sh $(FUZZ_CORE_OUT)/fuzz_core $(FUZZ_CORE_CORPUS)

# Seeds from the conformance suite: the suite runs over a recording loopback
# transport (record.c, loaded through VKMT_LOOPBACK_LIB), each device
# lifetime becomes one input, and the committed conf-* seeds are replaced.
# The recording device has the fuzzer's largest shape (512 KiB aperture), in
# which batch_of_10240 cannot pass; that test's failure is expected here.
# The soname is loopback's, which the device-event tests look up to play the
# host (vkmt_loopback_host). Its engine has no non-local segment, as the
# harness's device has none (its backend checks commits, which rules one
# out), so the three demotion tests skip.
$(FUZZ_CORE_OUT)/libvkmt-record.so: build/obj/$(FUZZ_CORE_DIR)/record.o $(CORE_SRC:%.c=build/obj/%.o)
	@mkdir -p $(@D)
	$(CC) -shared -Wl,-soname,libvkmt-loopback.so.$(SOVERSION) -o $@ $^ -lpthread

$(FUZZ_CORE_OUT)/conformance-record: $(CONF_SRC:%.c=build/obj/%.o) build/obj/$(HARNESS:.c=.o) \
		build/libvkmt.a
	@mkdir -p $(@D)
	$(CC) -o $@ $^ -ldl -lpthread

fuzz-core-seeds: $(FUZZ_CORE_OUT)/libvkmt-record.so $(FUZZ_CORE_OUT)/conformance-record \
		$(FUZZ_CORE_OUT)/fuzz_core_replay
	@rm -rf $(FUZZ_CORE_OUT)/seeds && mkdir -p $(FUZZ_CORE_OUT)/seeds
	@VKMT_TRANSPORT=loopback VKMT_LOOPBACK_LIB=$(CURDIR)/$(FUZZ_CORE_OUT)/libvkmt-record.so \
		VKMT_FUZZ_RECORD_DIR=$(FUZZ_CORE_OUT)/seeds $(FUZZ_CORE_OUT)/conformance-record \
		>$(FUZZ_CORE_OUT)/seeds.log 2>&1; \
		grep -E '^(not ok|# conformance:)' $(FUZZ_CORE_OUT)/seeds.log | sed 's/^/fuzz-core-seeds: /'
	@rm -f $(FUZZ_CORE_CORPUS)/conf-*
	@cp $(FUZZ_CORE_OUT)/seeds/conf-* $(FUZZ_CORE_CORPUS)/
	@$(FUZZ_CORE_OUT)/fuzz_core_replay $(FUZZ_CORE_CORPUS) | tail -n 1
	@echo "fuzz-core-seeds: $$(ls $(FUZZ_CORE_CORPUS)/conf-* | wc -l) seeds," \
		"$$(cat $(FUZZ_CORE_CORPUS)/* | wc -c) bytes in $(FUZZ_CORE_CORPUS)"

# Line coverage of hw-device/core/*.c (gcc --coverage, gcov): the engine's
# unit tests, the committed corpus and crash inputs, and both together.
# COVERAGE_CORPUS adds directories (e.g. build/fuzz/core/corpus after make fuzz).
COV_OUT := build/coverage
COVERAGE_CORPUS ?=
COV_CFLAGS := -std=c11 -O0 -g $(WARN) $(INC_ENGINE) -Iguest-lib/internal -Itests -MMD -MP

$(COV_OUT)/obj/%.o: %.c | check-config
	@mkdir -p $(@D)
	$(CC) $(COV_CFLAGS) --coverage -c $< -o $@

$(COV_OUT)/test_core: $(TEST_CORE_SRC:%.c=$(COV_OUT)/obj/%.o) $(COV_OUT)/obj/$(HARNESS:.c=.o) \
		$(CORE_SRC:%.c=$(COV_OUT)/obj/%.o)
	$(CC) --coverage -o $@ $^

$(COV_OUT)/fuzz_core_replay: $(FUZZ_CORE_SRC:%.c=$(COV_OUT)/obj/%.o) \
		$(COV_OUT)/obj/$(FUZZ_CORE_DIR)/replay_main.o $(CORE_SRC:%.c=$(COV_OUT)/obj/%.o)
	$(CC) --coverage -o $@ $^

COV_GCDA = rm -f $(COV_OUT)/obj/hw-device/core/*.gcda
COV_LINES = gcov -n -o $(COV_OUT)/obj/hw-device/core $(CORE_SRC) 2>/dev/null | \
	awk '/^File / { f = $$2; gsub("\047", "", f) } \
	     /^Lines executed:/ && f ~ /^hw-device\/core\/[^\/]*\.c$$/ { \
	         split($$2, a, ":"); p = a[2]; sub("%", "", p); \
	         printf "%s %d %d\n", f, $$4, int(p * $$4 / 100 + 0.5) } \
	     /^Lines executed:/ { f = "" }' >$(1)

coverage: $(COV_OUT)/test_core $(COV_OUT)/fuzz_core_replay
	@$(COV_GCDA)
	@$(COV_OUT)/test_core >$(COV_OUT)/unit.log 2>&1 || \
		{ tail -n 5 $(COV_OUT)/unit.log; echo "coverage: test_core failed" >&2; exit 1; }
	@$(call COV_LINES,$(COV_OUT)/unit.txt)
	@$(COV_GCDA)
	@$(COV_OUT)/fuzz_core_replay $(FUZZ_CORE_CORPUS) $(FUZZ_CORE_CRASHES) $(COVERAGE_CORPUS) \
		>$(COV_OUT)/corpus.log 2>&1 || \
		{ tail -n 5 $(COV_OUT)/corpus.log; echo "coverage: corpus replay failed" >&2; exit 1; }
	@$(call COV_LINES,$(COV_OUT)/corpus.txt)
	@$(COV_OUT)/test_core >/dev/null 2>&1
	@$(call COV_LINES,$(COV_OUT)/both.txt)
	@echo "Line coverage of hw-device/core (gcov): unit tests, corpus replay, both"
	@awk 'FILENAME ~ /unit/ { u[$$1] = $$3; n[$$1] = $$2 } \
	     FILENAME ~ /corpus/ { c[$$1] = $$3 } \
	     FILENAME ~ /both/ { b[$$1] = $$3; order[++k] = $$1 } \
	     function pct(x, y) { return y ? 100 * x / y : 100 } \
	     END { printf "%-30s %6s %8s %8s %8s\n", "file", "lines", "unit", "corpus", "both"; \
	           for (i = 1; i <= k; i++) { f = order[i]; tn += n[f]; tu += u[f]; tc += c[f]; tb += b[f]; \
	               printf "%-30s %6d %7.1f%% %7.1f%% %7.1f%%\n", f, n[f], pct(u[f], n[f]), \
	                   pct(c[f], n[f]), pct(b[f], n[f]) } \
	           printf "%-30s %6d %7.1f%% %7.1f%% %7.1f%%\n", "total", tn, pct(tu, tn), \
	               pct(tc, tn), pct(tb, tn) }' \
		$(COV_OUT)/unit.txt $(COV_OUT)/corpus.txt $(COV_OUT)/both.txt

# The few inputs of a campaign's corpus that reach engine lines the unit
# tests and the committed inputs do not (distill.py; copy them by hand).
FUZZ_CORE_DISTILL_DIRS ?= $(FUZZ_CORE_OUT)/corpus
fuzz-core-distill: $(COV_OUT)/test_core $(COV_OUT)/fuzz_core_replay
	@python3 $(FUZZ_CORE_DIR)/distill.py $(COV_OUT) $(FUZZ_CORE_DISTILL_DIRS)
