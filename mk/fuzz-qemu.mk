# The QEMU fuzz target for the device (FUZZING.md, "The QEMU target"): qemu-fuzz-x86_64
# with the vkmt-fuzz targets (QFUZZ_TARGETS: the device on q35's root bus,
# and the port targets behind a pcie-root-port with hot-plug, a file memdev
# and each doorbell mode), built with clang, libFuzzer, ASan and UBSan
# into build/qemu-fuzz by scripts/build-qemu-fuzz.sh, which first checks that
# clang and its fuzzer runtime (Debian: libclang-rt-14-dev) link.
#
#   make fuzz-qemu-build   build/qemu-fuzz/qemu-fuzz-x86_64 (~5 min on 2 cores, once)
#   make fuzz-qemu-oss-fuzz the same through the OSS-Fuzz build contract
#                          (tests/qtest/fuzz/build.sh), laid out in build/fuzz/qemu/oss-fuzz
#   make fuzz-qemu         a campaign: FUZZ_TIME seconds (600), FUZZ_JOBS processes (2),
#                          FUZZ_TARGET (vkmt-fuzz); corpus in build/fuzz/qemu/corpus,
#                          seeds from tests/qtest/fuzz/corpus, crashes in build/fuzz/qemu/crashes
#   make fuzz-qemu-replay  every committed seed and crash once, in every target
#   make fuzz-qemu-smoke   FUZZ_SMOKE_RUNS (2000) fuzzed inputs from the seeds
#   make fuzz-qemu-check   the committed seeds match their generator, replay, smoke;
#                          skipped with a message when QEMU or the toolchain is missing
#   make fuzz-qemu-check-build  the build alone, or the same skip (for check-build)
#   make fuzz-qemu-seeds   regenerate tests/qtest/fuzz/corpus/seed-* and the generated
#                          regression inputs in tests/qtest/fuzz/crashes (vkmt_fuzz_seeds.c)
#   make fuzz-qemu-bench   BENCH_TIME seconds (60) each: generic-fuzz on edu, then vkmt-fuzz
#   make fuzz-qemu-cov     edges of hw/vkmt the corpora cover in FUZZ_TARGET (campaign
#                          corpus + seeds)
#   make fuzz-qemu-linecov line coverage of hw/vkmt by the same inputs, every target
#                          (llvm-cov; its own build in build/qemu-fuzz-cov, ~9 min once)

comma := ,
QFUZZ_BUILD := build/qemu-fuzz
QFUZZ_BIN := $(QFUZZ_BUILD)/qemu-fuzz-x86_64
QFUZZ_DIR := build/fuzz/qemu
QFUZZ_SRC := tests/qtest/fuzz
QFUZZ_SEEDS := $(QFUZZ_SRC)/corpus
QFUZZ_CRASHES := $(QFUZZ_SRC)/crashes
QFUZZ_GEN := $(QFUZZ_DIR)/vkmt-fuzz-seeds
QFUZZ_TARGETS := vkmt-fuzz vkmt-fuzz-ioeventfd vkmt-fuzz-port vkmt-fuzz-port-ioeventfd \
	vkmt-fuzz-port-iothread
# The OSS-Fuzz build contract's variables (tests/qtest/fuzz/build.sh): the
# Makefile builds through them too, so that the contract build CI checks
# (make fuzz-qemu-oss-fuzz) reuses this tree.
QFUZZ_CC = $(if $(filter ccache,$(firstword $(QEMU_CC))),ccache clang,clang)
QFUZZ_CONTRACT = CC='$(QFUZZ_CC)' CXX='$(QFUZZ_CC)++' \
	CFLAGS=-fsanitize=address,undefined,fuzzer-no-link LIB_FUZZING_ENGINE=-fsanitize=fuzzer
BUILD_QFUZZ = $(QFUZZ_CONTRACT) scripts/build-qemu-fuzz.sh $(QFUZZ_BUILD) '$(QEMU_SRC)' \
	'$(MESON_PY)' '$(QEMU_CC)' --contract
QFUZZ_OSS_OUT ?= $(QFUZZ_DIR)/oss-fuzz

FUZZ_TIME ?= 600
FUZZ_JOBS ?= 2
FUZZ_TARGET ?= vkmt-fuzz
FUZZ_SMOKE_RUNS ?= 2000
BENCH_TIME ?= 60
# -L: firmware for a copy of the binary outside its build tree (the build
# links it into qemu-bundle). UBSan reports halt, so libFuzzer saves them.
# Leak checks are off: a QEMU process holds much that LSan would call leaked;
# the target checks itself that a device reset frees every object.
QFUZZ_ENV := QEMU_FUZZ_ARGS='-L /usr/share/seabios -L /usr/share/qemu' \
	UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 ASAN_OPTIONS=detect_leaks=0
QFUZZ_LIMITS := -timeout=10 -rss_limit_mb=4096 -detect_leaks=0
QFUZZ_OPTS := $(QFUZZ_LIMITS) -max_len=8192 -dict=$(QFUZZ_SRC)/vkmt-fuzz.dict

.PHONY: fuzz-qemu fuzz-qemu-build fuzz-qemu-oss-fuzz fuzz-qemu-replay fuzz-qemu-smoke fuzz-qemu-check \
	fuzz-qemu-check-build fuzz-qemu-seeds fuzz-qemu-seeds-check fuzz-qemu-bench fuzz-qemu-cov \
	fuzz-qemu-linecov clean-qemu-fuzz

fuzz-qemu-build: | check-config
	$(NEED_QEMU)
	@$(BUILD_QFUZZ)

# $(QFUZZ_OSS_OUT) as OSS-Fuzz's $OUT: the targets, corpora, dictionaries,
# options, libraries and firmware (tests/fuzz/oss-fuzz-check.sh runs them).
fuzz-qemu-oss-fuzz: | check-config
	$(NEED_QEMU)
	@$(QFUZZ_CONTRACT) QEMU_SRC='$(QEMU_SRC)' MESON_PY='$(MESON_PY)' WORK=build \
		OUT=$(QFUZZ_OSS_OUT) tests/qtest/fuzz/build.sh

fuzz-qemu: fuzz-qemu-build
	@mkdir -p $(QFUZZ_DIR)/corpus $(QFUZZ_DIR)/crashes
	@echo "fuzz-qemu: $(FUZZ_TARGET), $(FUZZ_JOBS) jobs, $(FUZZ_TIME) s; crashes go to $(QFUZZ_DIR)/crashes"
	$(QFUZZ_ENV) $(QFUZZ_BIN) --fuzz-target=$(FUZZ_TARGET) $(QFUZZ_OPTS) \
		-fork=$(FUZZ_JOBS) -ignore_crashes=1 -ignore_timeouts=1 -ignore_ooms=1 \
		-max_total_time=$(FUZZ_TIME) -artifact_prefix=$(QFUZZ_DIR)/crashes/ \
		$(QFUZZ_DIR)/corpus $(QFUZZ_SEEDS)
	@n=$$(ls $(QFUZZ_DIR)/crashes | wc -l); echo "fuzz-qemu: $$n file(s) in $(QFUZZ_DIR)/crashes"; \
		test "$$n" -eq 0

# libFuzzer runs file arguments once each and stops at the first crash; the
# limits turn a hang into a failure (a timeout) instead of a stuck check.
QFUZZ_REPLAY_FILES = $(QFUZZ_SEEDS)/* $(filter-out %/README,$(wildcard $(QFUZZ_CRASHES)/*))
fuzz-qemu-replay: fuzz-qemu-build
	@for t in $(QFUZZ_TARGETS); do \
		$(QFUZZ_ENV) $(QFUZZ_BIN) --fuzz-target=$$t $(QFUZZ_LIMITS) $(QFUZZ_REPLAY_FILES) \
			>$(QFUZZ_DIR)/replay-$$t.log 2>&1 || \
			{ tail -n 40 $(QFUZZ_DIR)/replay-$$t.log; echo "fuzz-qemu-replay: $$t failed (log: $(QFUZZ_DIR)/replay-$$t.log)"; exit 1; }; \
		echo "fuzz-qemu-replay: $$t: $$(grep -c '^Running: ' $(QFUZZ_DIR)/replay-$$t.log) inputs, no crash"; \
	done

fuzz-qemu-smoke: fuzz-qemu-build
	@rm -rf $(QFUZZ_DIR)/smoke && mkdir -p $(QFUZZ_DIR)/smoke $(QFUZZ_DIR)/crashes
	@$(QFUZZ_ENV) $(QFUZZ_BIN) --fuzz-target=vkmt-fuzz $(QFUZZ_OPTS) -seed=1 \
		-runs=$(FUZZ_SMOKE_RUNS) -artifact_prefix=$(QFUZZ_DIR)/crashes/ \
		$(QFUZZ_DIR)/smoke $(QFUZZ_SEEDS) >$(QFUZZ_DIR)/smoke.log 2>&1 || \
		{ tail -n 40 $(QFUZZ_DIR)/smoke.log; echo "fuzz-qemu-smoke: failed (log: $(QFUZZ_DIR)/smoke.log)"; exit 1; }
	@echo "fuzz-qemu-smoke: $$(grep -E '^#[0-9]+' $(QFUZZ_DIR)/smoke.log | tail -n 1)"

# The seed generator is a host program: it only encodes inputs.
$(QFUZZ_GEN): $(QFUZZ_SRC)/vkmt_fuzz_seeds.c $(QFUZZ_SRC)/vkmt_fuzz.h protocol/vkmt_proto.h | check-config
	@mkdir -p $(@D)
	$(CC) -std=c11 $(WARN) -O2 -Iprotocol -o $@ $<

fuzz-qemu-seeds: $(QFUZZ_GEN)
	rm -f $(QFUZZ_SEEDS)/seed-*
	$(QFUZZ_GEN) $(QFUZZ_SEEDS) $(QFUZZ_CRASHES)

# Run by fuzz-qemu-check: the committed seeds are what the generator writes,
# and so are the generated regression inputs (crashes/ also holds others).
fuzz-qemu-seeds-check: $(QFUZZ_GEN)
	@rm -rf $(QFUZZ_DIR)/seeds $(QFUZZ_DIR)/seeds-crashes
	@mkdir -p $(QFUZZ_DIR)/seeds $(QFUZZ_DIR)/seeds-crashes
	@$(QFUZZ_GEN) $(QFUZZ_DIR)/seeds $(QFUZZ_DIR)/seeds-crashes
	@diff -r $(QFUZZ_DIR)/seeds $(QFUZZ_SEEDS) >/dev/null || \
		{ echo "fuzz-qemu: $(QFUZZ_SEEDS) differs from the generator's output: make fuzz-qemu-seeds"; exit 1; }
	@for f in $(QFUZZ_DIR)/seeds-crashes/*; do \
		cmp -s $$f $(QFUZZ_CRASHES)/$${f##*/} || \
		{ echo "fuzz-qemu: $(QFUZZ_CRASHES)/$${f##*/} differs from the generator's output: make fuzz-qemu-seeds"; exit 1; }; \
	done
	@echo "fuzz-qemu-seeds-check: $(QFUZZ_SEEDS) and the generated $(QFUZZ_CRASHES) inputs match vkmt_fuzz_seeds.c"

# For make check, through tests/run-suites.sh $(FUZZ_QEMU_CHECK_ARGS): one
# "# fuzz_qemu: N passed, N failed" line (one skipped when skipped: no QEMU, or
# no clang fuzzer toolchain).
FUZZ_QEMU_CHECK_ARGS := --replay $(MAKE) -s fuzz-qemu-check
QFUZZ_SKIP = if [ "$(WITH_QEMU)" != 1 ]; then \
		echo "$@: skipped: QEMU is not configured (./configure)"; $(1); exit 0; fi; \
	if ! scripts/build-qemu-fuzz.sh --probe; then \
		echo "$@: skipped: no clang fuzzer toolchain (above)"; $(1); exit 0; fi

fuzz-qemu-check-build: | check-config
	@$(call QFUZZ_SKIP,:); $(BUILD_QFUZZ)

fuzz-qemu-check: | check-config
	@$(call QFUZZ_SKIP,echo "# fuzz_qemu: 0 passed$(comma) 0 failed$(comma) 1 skipped"); \
	p=0; f=0; \
	for t in fuzz-qemu-seeds-check fuzz-qemu-build fuzz-qemu-replay fuzz-qemu-smoke; do \
		if $(MAKE) --no-print-directory $$t; then p=$$((p + 1)); else f=$$((f + 1)); \
			[ $$t = fuzz-qemu-build ] && break; fi; \
	done; \
	echo "# fuzz_qemu: $$p passed, $$f failed"; test $$f -eq 0

# Execs/s of stock generic-fuzz on QEMU's edu device and of vkmt-fuzz, one
# process each, one after the other on this machine (FUZZING.md, "The QEMU target").
fuzz-qemu-bench: fuzz-qemu-build
	@rm -rf $(QFUZZ_DIR)/bench && mkdir -p $(QFUZZ_DIR)/bench/edu $(QFUZZ_DIR)/bench/vkmt
	@QEMU_FUZZ_ARGS='-machine q35 -nodefaults -device edu -L /usr/share/seabios -L /usr/share/qemu' \
		QEMU_FUZZ_OBJECTS='edu*' UBSAN_OPTIONS=halt_on_error=1 ASAN_OPTIONS=detect_leaks=0 \
		$(QFUZZ_BIN) --fuzz-target=generic-fuzz $(QFUZZ_LIMITS) -seed=1 \
		-artifact_prefix=$(QFUZZ_DIR)/bench/edu- \
		-max_total_time=$(BENCH_TIME) -print_final_stats=1 \
		$(QFUZZ_DIR)/bench/edu >$(QFUZZ_DIR)/bench/edu.log 2>&1 || true
	@$(QFUZZ_ENV) $(QFUZZ_BIN) --fuzz-target=vkmt-fuzz $(QFUZZ_OPTS) -seed=1 \
		-artifact_prefix=$(QFUZZ_DIR)/bench/vkmt- -max_total_time=$(BENCH_TIME) -print_final_stats=1 \
		$(QFUZZ_DIR)/bench/vkmt $(QFUZZ_SEEDS) >$(QFUZZ_DIR)/bench/vkmt.log 2>&1 || true
	@for b in edu vkmt; do \
		printf 'fuzz-qemu-bench: %-4s %s execs/s, %s runs; last: %s\n' $$b \
			"$$(sed -n 's/^stat::average_exec_per_sec: *//p' $(QFUZZ_DIR)/bench/$$b.log)" \
			"$$(sed -n 's/^stat::number_of_executed_units: *//p' $(QFUZZ_DIR)/bench/$$b.log)" \
			"$$(grep -E '^#[0-9]+' $(QFUZZ_DIR)/bench/$$b.log | tail -n 1)"; \
	done

# libFuzzer's per-function edge counts (-print_coverage) after running every
# input of the campaign corpus and the seeds once, summed per file of hw/vkmt.
fuzz-qemu-cov: fuzz-qemu-build
	@mkdir -p $(QFUZZ_DIR)/corpus $(QFUZZ_DIR)/crashes
	@$(QFUZZ_ENV) $(QFUZZ_BIN) --fuzz-target=$(FUZZ_TARGET) $(QFUZZ_OPTS) -runs=0 -print_coverage=1 \
		-artifact_prefix=$(QFUZZ_DIR)/crashes/ \
		$(QFUZZ_DIR)/corpus $(QFUZZ_SEEDS) >$(QFUZZ_DIR)/cov.log 2>&1 || \
		{ tail -n 20 $(QFUZZ_DIR)/cov.log; exit 1; }
	@awk '/^(UN)?COVERED_FUNC:/ && /hw\/vkmt\// { \
		split($$5, e, "/"); f = $$NF; sub(/:[0-9]+$$/, "", f); sub(/.*hw\/vkmt\//, "hw-device/", f); \
		cov[f] += e[1]; tot[f] += e[2]; fn[f]++; if (e[1] > 0) hit[f]++ } \
		END { printf "%-32s %9s %13s\n", "$(FUZZ_TARGET) coverage", "functions", "edges"; \
		for (f in tot) { printf "%-32s %4d/%-4d %6d/%-6d %5.1f%%\n", f, hit[f], fn[f], cov[f], tot[f], \
			100 * cov[f] / tot[f]; C += cov[f]; T += tot[f]; H += hit[f]; N += fn[f] } \
		printf "%-32s %4d/%-4d %6d/%-6d %5.1f%%\n", "total", H, N, C, T, 100 * C / T }' \
		$(QFUZZ_DIR)/cov.log
	@grep -E '^#[0-9]+.*INITED' $(QFUZZ_DIR)/cov.log | sed 's/^/fuzz-qemu-cov: all hw\/ (libFuzzer): /'

# Source-based line coverage of hw/vkmt: a second fuzz build with clang's
# profile instrumentation runs every input of the campaign corpus and the
# seeds once in each target; llvm-cov reports the merged profile.
QFUZZ_COV_BUILD := build/qemu-fuzz-cov
LLVM_COV ?= llvm-cov-14
LLVM_PROFDATA ?= llvm-profdata-14
# The coverage mapping names sources BUILD/../src/qemu/..., and hw/vkmt is a
# symbolic link, so llvm-cov's own source filter matches nothing: instead,
# ignore every file that is not below hw/vkmt/.
QFUZZ_COV_ONLY_VKMT := -ignore-filename-regex='^/usr/|qemu-fuzz-cov/[^.]|/src/qemu/([^h]|h[^w]|hw[^/]|hw/([^v]|v[^k]|vk[^m]|vkm[^t]|vkmt[^/]))'
QFUZZ_COV_ARGS = $(QFUZZ_COV_BUILD)/qemu-fuzz-x86_64 -instr-profile=$(QFUZZ_DIR)/linecov/all.profdata \
	$(QFUZZ_COV_ONLY_VKMT)
fuzz-qemu-linecov: | check-config
	$(NEED_QEMU)
	@scripts/build-qemu-fuzz.sh $(QFUZZ_COV_BUILD) '$(QEMU_SRC)' '$(MESON_PY)' '$(QEMU_CC)' --coverage
	@rm -rf $(QFUZZ_DIR)/linecov && mkdir -p $(QFUZZ_DIR)/linecov $(QFUZZ_DIR)/corpus
	@for t in $(QFUZZ_TARGETS); do \
		LLVM_PROFILE_FILE=$(CURDIR)/$(QFUZZ_DIR)/linecov/$$t.profraw $(QFUZZ_ENV) \
		$(QFUZZ_COV_BUILD)/qemu-fuzz-x86_64 --fuzz-target=$$t $(QFUZZ_OPTS) -runs=0 \
			-artifact_prefix=$(QFUZZ_DIR)/linecov/ \
			$(QFUZZ_DIR)/corpus $(QFUZZ_SEEDS) >$(QFUZZ_DIR)/linecov/$$t.log 2>&1 || \
			{ tail -n 20 $(QFUZZ_DIR)/linecov/$$t.log; exit 1; }; \
	done
	@$(LLVM_PROFDATA) merge -o $(QFUZZ_DIR)/linecov/all.profdata $(QFUZZ_DIR)/linecov/*.profraw
	@$(LLVM_COV) report $(QFUZZ_COV_ARGS) | \
		awk '$$1 ~ /\.c$$/ || $$1 == "TOTAL" { f = $$1; sub(/.*hw\/vkmt\//, "", f); \
			if (f != "TOTAL") f = "hw-device/" f; \
			printf "%-30s lines %5d, missed %4d: %7s   branches %7s\n", f, $$8, $$9, $$10, $$13 }'
	@$(LLVM_COV) show $(QFUZZ_COV_ARGS) -format=html -output-dir=$(QFUZZ_DIR)/linecov/html
	@echo "fuzz-qemu-linecov: annotated sources in $(QFUZZ_DIR)/linecov/html/index.html" \
		"(counts include QEMU's start-up: realize, class_init)"

clean-qemu-fuzz:
	rm -rf $(QFUZZ_BUILD) $(QFUZZ_BUILD)-configure.log $(QFUZZ_COV_BUILD) \
		$(QFUZZ_COV_BUILD)-configure.log $(QFUZZ_DIR)
