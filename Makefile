# SPDX-License-Identifier: MIT
# vkmt front door: ./configure && make; make check; make bench; make qemu.
# Every artefact goes to build/ (the ASan+UBSan twin of each to build/asan/,
# QEMU with the device to build/qemu/).

-include build/config.mk
ifeq ($(CC),)
CC := cc
endif
ifeq ($(origin CC),default)
CC := cc
endif
PREFIX ?= /usr/local
LIBDIR ?= $(PREFIX)/lib
DESTDIR ?=

VERSION := 1.0.0
SOVERSION := 1

WARN := -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes -Wmissing-prototypes
BASE_CFLAGS = -std=c11 -fPIC -fvisibility=hidden $(WARN) $(INC) -MMD -MP

# The layering, enforced: each part compiles with only the headers it may
# use, so a wrong include fails the build. protocol/ is for everyone; the
# engine sees nothing of the guest side and libvkmt nothing of the engine;
# applications, the conformance suite and the examples see only libvkmt's
# public headers; tools and benchmarks add guest-lib/internal (the one
# internal interface made for them, vkmt_internal.h). The loopback library
# is the one place where guest code meets the engine.
INC_ENGINE := -Iprotocol -Ihw-device/core
INC_PUBLIC := -Iguest-lib/include
INC_TOOLS := -Iprotocol $(INC_PUBLIC) -Iguest-lib/internal
INC_LIB := $(INC_TOOLS) -Iguest-lib/src -Iguest-kmd/uapi
OPT_CFLAGS := -O2 -g
SAN_CFLAGS := -O1 -g -fsanitize=address,undefined -fno-sanitize-recover=all \
	-fno-omit-frame-pointer

# The virgl backend needs virglrenderer and libepoxy (configure found them,
# or was told --without-virgl: WITH_VIRGL=0): only the loopback library and
# its own unit test link it, so the engine the fuzzers and QEMU build stays
# free of them. A config.mk from before the option had virgl built.
WITH_VIRGL ?= 1
VIRGL_SRC := hw-device/core/backend_virgl.c
VIRGL_OBJ = $(if $(filter 1,$(WITH_VIRGL)),$(1)/obj/$(VIRGL_SRC:.c=.o))
CORE_SRC := $(filter-out $(VIRGL_SRC),$(wildcard hw-device/core/*.c))
LIB_SRC := $(wildcard guest-lib/src/*.c)
LOOP_SRC := guest-lib/loopback/loopback.c
CONF_SRC := $(wildcard tests/conformance/*.c)
MODEL_SRC := $(wildcard tests/model/*.c)
# The test_core binary: the engine's unit tests on their fixture, and the
# aperture allocator's.
TEST_CORE_SRC := tests/unit/core_fixture.c $(wildcard tests/unit/test_core_*.c) \
	tests/unit/test_aperture.c
HARNESS := tests/harness.c

.PHONY: all check check-build examples bench-host install uninstall format format-check clean \
	qemu qemu-check-build clean-qemu
# libvkmt.so.1 is the soname programs load: a program built against the
# build tree (README) starts after a plain make.
all: build/libvkmt.a build/libvkmt.so build/libvkmt.so.$(SOVERSION) build/libvkmt-loopback.so \
	build/vkmt-uninstalled.pc build/vkmt.pc

# $(call variant,DIR,CFLAGS): objects, libraries and tests built into DIR.
define variant
$(1)/obj/%.o: %.c | check-config
	@mkdir -p $$(@D)
	$$(CC) $$(BASE_CFLAGS) $(2) -c $$< -o $$@

$(1)/obj/hw-device/core/%.o: INC = $$(INC_ENGINE)
$(1)/obj/guest-lib/src/%.o: INC = $$(INC_LIB)
$(1)/obj/guest-lib/loopback/%.o: INC = $$(INC_TOOLS) -Ihw-device/core
$(1)/obj/tools/%.o $(1)/obj/bench/%.o: INC = $$(INC_TOOLS)
$(1)/obj/tests/harness.o: INC = -Itests
$(1)/obj/tests/conformance/%.o $(1)/obj/tests/model/%.o: INC = $$(INC_PUBLIC) -Itests
$(1)/obj/tests/vm/%.o: INC = $$(INC_TOOLS) -Itests
$(1)/obj/tests/unit/%.o: INC = $$(INC_ENGINE) -Itests
$(1)/obj/tests/unit/test_protocol.o: INC = $$(INC_TOOLS) -Itests
$(1)/obj/tests/unit/test_guestlib.o: INC = $$(INC_LIB) -Itests
$(1)/obj/tests/unit/test_virgl.o: INC = $$(INC_ENGINE) $$(INC_PUBLIC) -Itests
$(1)/obj/tests/fuzz/core/%.o: INC = $$(INC_ENGINE) -Iguest-lib/internal -Itests

$(1)/obj/$(VIRGL_SRC:.c=.o) $(1)/obj/tests/unit/test_virgl.o: BASE_CFLAGS += $$(VIRGL_CFLAGS)
$(1)/obj/guest-lib/loopback/loopback.o: BASE_CFLAGS += $(if $(filter 1,$(WITH_VIRGL)),-DVKMT_WITH_VIRGL)

$(1)/libvkmt.a: $$(LIB_SRC:%.c=$(1)/obj/%.o)
	rm -f $$@ && ar rcs $$@ $$^

$(1)/libvkmt.so.$(VERSION): $$(LIB_SRC:%.c=$(1)/obj/%.o)
	$$(CC) $(2) -shared -Wl,-soname,libvkmt.so.$(SOVERSION) -o $$@ $$^ -ldl -lpthread

$(1)/libvkmt.so.$(SOVERSION) $(1)/libvkmt.so: $(1)/libvkmt.so.$(VERSION)
	ln -sf libvkmt.so.$(VERSION) $$@

$(1)/libvkmt-loopback.so.$(SOVERSION): $$(CORE_SRC:%.c=$(1)/obj/%.o) $$(LOOP_SRC:%.c=$(1)/obj/%.o) \
		$(call VIRGL_OBJ,$(1))
	$$(CC) $(2) -shared -Wl,-soname,libvkmt-loopback.so.$(SOVERSION) -o $$@ $$^ \
		$$(VIRGL_LIBS) -lpthread

$(1)/libvkmt-loopback.so: $(1)/libvkmt-loopback.so.$(SOVERSION)
	ln -sf libvkmt-loopback.so.$(SOVERSION) $$@

$(1)/tests/test_protocol: $(1)/obj/tests/unit/test_protocol.o $(1)/obj/$(HARNESS:.c=.o)
	@mkdir -p $$(@D)
	$$(CC) $(2) -o $$@ $$^

$(1)/tests/test_core: $$(TEST_CORE_SRC:%.c=$(1)/obj/%.o) $(1)/obj/$(HARNESS:.c=.o) \
		$$(CORE_SRC:%.c=$(1)/obj/%.o)
	@mkdir -p $$(@D)
	$$(CC) $(2) -o $$@ $$^

$(1)/tests/test_virgl: $(1)/obj/tests/unit/test_virgl.o $(1)/obj/$(HARNESS:.c=.o) \
		$(1)/obj/tests/conformance/conf_util.o $(1)/obj/$(VIRGL_SRC:.c=.o) \
		$(1)/obj/hw-device/core/backend_mem.o $(3)
	@mkdir -p $$(@D)
	$$(CC) $(2) -o $$@ $$(filter %.o,$$^) $$($(4)) $$(VIRGL_LIBS) -ldl -lpthread

$(1)/tests/test_guestlib: $(1)/obj/tests/unit/test_guestlib.o $(1)/obj/$(HARNESS:.c=.o) \
		$(1)/libvkmt.a
	@mkdir -p $$(@D)
	$$(CC) $(2) -o $$@ $$^ -ldl -lpthread

$(1)/tests/conformance: $$(CONF_SRC:%.c=$(1)/obj/%.o) $(1)/obj/$(HARNESS:.c=.o) $(3)
	@mkdir -p $$(@D)
	$$(CC) $(2) -o $$@ $$(filter %.o,$$^) $$($(4)) -ldl -lpthread

$(1)/tests/modeltest: $$(MODEL_SRC:%.c=$(1)/obj/%.o) $(1)/obj/$(HARNESS:.c=.o) $(3)
	@mkdir -p $$(@D)
	$$(CC) $(2) -o $$@ $$(filter %.o,$$^) $$($(4)) -ldl -lpthread

$(1)/tests/all: $(1)/tests/test_protocol $(1)/tests/test_core $(1)/tests/test_guestlib \
		$(if $(filter 1,$(WITH_VIRGL)),$(1)/tests/test_virgl) $(1)/tests/conformance \
		$(1)/tests/modeltest $(1)/libvkmt-loopback.so
endef

# The normal build links the conformance suite against the shared library
# (soname and exports get tested); the sanitizer build links it statically.
CONF_LINK_SHARED := -Lbuild -lvkmt -Wl,-rpath,'$$ORIGIN/..'
CONF_LINK_STATIC := build/asan/libvkmt.a
$(eval $(call variant,build,$(OPT_CFLAGS),build/libvkmt.so.$(SOVERSION) build/libvkmt.so,CONF_LINK_SHARED))
$(eval $(call variant,build/asan,$(SAN_CFLAGS),build/asan/libvkmt.a,CONF_LINK_STATIC))

build/bench/bench_host: build/obj/bench/bench_host.o build/obj/bench/bench_common.o \
		build/libvkmt.so.$(SOVERSION) build/libvkmt.so
	@mkdir -p $(@D)
	$(CC) -o $@ $(filter %.o,$^) -Lbuild -lvkmt -Wl,-rpath,'$$ORIGIN/..' -ldl -lpthread

build/vkmt-uninstalled.pc: guest-lib/vkmt-uninstalled.pc.in | check-config
	sed -e 's|@VERSION@|$(VERSION)|' -e 's|@SRCDIR@|$(CURDIR)|' -e 's|@BUILDDIR@|$(CURDIR)/build|g' $< > $@

build/vkmt.pc: guest-lib/vkmt.pc.in | check-config
	sed -e 's|@VERSION@|$(VERSION)|' -e 's|@PREFIX@|$(PREFIX)|' -e 's|@LIBDIR@|$(LIBDIR)|' $< > $@

check-config:
	@test -f build/config.mk || { echo "run ./configure first" >&2; exit 1; }

# Examples build as a user's program would: through pkg-config.
EXAMPLES := $(patsubst examples/%.c,build/examples/%,$(wildcard examples/*.c))
examples: $(EXAMPLES)
build/examples/%: examples/%.c build/vkmt-uninstalled.pc build/libvkmt.so
	@mkdir -p $(@D)
	$(CC) -std=c11 $(WARN) -O2 -o $@ $< \
		$$(PKG_CONFIG_PATH=build pkg-config --cflags --libs vkmt-uninstalled)

# QEMU 10.0 with the device (./configure fetched and overlaid the source).
# Always handed to ninja, which decides what is out of date.
QEMU_BUILD := build/qemu
QEMU_BIN := $(QEMU_BUILD)/qemu-system-x86_64
QTEST_BIN := $(QEMU_BUILD)/tests/qtest/vkmt-test
BUILD_QEMU = VKMT_QEMU_VIRGL=$(WITH_VIRGL) scripts/build-qemu.sh $(QEMU_BUILD) '$(QEMU_SRC)' '$(MESON_PY)' '$(QEMU_CC)'
NEED_QEMU = @test "$(WITH_QEMU)" = 1 || \
	{ echo "QEMU is not configured (./configure --without-qemu, or older): run ./configure" >&2; exit 1; }

qemu: | check-config
	$(NEED_QEMU)
	@$(BUILD_QEMU) qemu-system-x86_64

# QEMU and the device's qtest.
qemu-check-build: | check-config
	$(NEED_QEMU)
	@$(BUILD_QEMU) qemu-system-x86_64 tests/qtest/vkmt-test

# The suites tests/vm/vm-suites.sh runs in the guest (test_kmd last, with the
# guest kernel driver loaded); each must report. The backend=mem guest's
# device migrates and can be hot-unplugged (vm-run --hotplug): that guest
# also runs test_migrate and test_unplug over both transports.
VM_SUITES := conformance test_reap test_squeeze_pci modeltest conformance_kmd conformance_kmd_root \
	modeltest_kmd test_squeeze_kmd test_kmd
VM_SUITES_MEM := $(VM_SUITES) test_migrate_pci test_migrate_kmd test_unplug_pci test_unplug_kmd
# Without virgl the suites over it are not built: run-suites.sh counts them
# as skipped.
SUITES_VIRGL := $(if $(filter 1,$(WITH_VIRGL)),,--without-virgl)
ifeq ($(WITH_QEMU),1)
CHECK_QEMU := qemu-check-build vm-image
QTEST_ARGS := --qtest $(QEMU_BIN) $(QTEST_BIN) \
	--replay tests/scripts/test_qmp_schedule.py $(QEMU_BIN) \
	--vm "scripts/vm-run --timeout 600 --hotplug -- vm-suites --migrate --unplug" "$(VM_SUITES_MEM)" \
	$(if $(filter 1,$(WITH_VIRGL)),--vm "scripts/vm-run --timeout 600 --device-props backend=virgl -- vm-suites" "$(VM_SUITES)")
else
CHECK_QEMU :=
QTEST_ARGS := --no-qtest
endif

check-build: all build/tests/all build/asan/tests/all examples $(CHECK_QEMU) fuzz-qemu-check-build

# make check: every suite in both builds, the device's qtest in QEMU, the
# QMP schedule script against QEMU, the conformance and reap suites inside
# the test VM (two guests: the device with backend=mem, then backend=virgl),
# and both fuzz harnesses over their corpus and crash inputs (FUZZING.md);
# ends with one "N passed, N failed".
check: check-build
	@tests/run-suites.sh build build/asan $(SUITES_VIRGL) --replay tests/selftest/run-suites-selftest.sh \
		--replay scripts/mutants.py --replay $(MAKE) -s checkpatch \
		$(QTEST_ARGS) $(FUZZ_CORE_CHECK_ARGS) $(FUZZ_QEMU_CHECK_ARGS) -- $(EXAMPLES)

# QEMU's own style check (scripts/checkpatch.pl of the QEMU tree ./configure
# prepared) over the files that live in QEMU's tree: the glue, its qtest and
# fuzz target, formatted at QEMU's 80 columns by their directories'
# .clang-format. The engine and the rest keep the project's style. One test
# per file: an ERROR fails it (warnings are shown by running the script).
CHECKPATCH_FILES = $(sort $(wildcard hw-device/qemu/*.[ch] tests/qtest/*.c tests/qtest/fuzz/*.[ch]))
.PHONY: checkpatch
checkpatch: | check-config
	@if [ "$(WITH_QEMU)" != 1 ]; then echo "checkpatch: skipped: no QEMU tree (./configure --without-qemu)"; \
		echo "# checkpatch: 0 passed, 0 failed, 1 skipped"; exit 0; fi; \
	p=0; f=0; for file in $(CHECKPATCH_FILES); do \
		out=$$(perl $(QEMU_SRC)/scripts/checkpatch.pl --no-tree --terse -f $$file 2>&1); \
		if printf '%s\n' "$$out" | grep -q 'ERROR:'; then \
			f=$$((f + 1)); printf '%s\n' "$$out" | grep 'ERROR:'; \
		else p=$$((p + 1)); fi; \
	done; echo "# checkpatch: $$p passed, $$f failed"; test $$f -eq 0

# The fast inner loop: unit tests and conformance over loopback, both builds
# (VKMT_TEST=PATTERN picks tests by name, tests/harness.h).
.PHONY: check-unit
check-unit: build/tests/all build/asan/tests/all
	@start=$$(date +%s); tests/run-suites.sh build build/asan $(SUITES_VIRGL) --no-qtest; rc=$$?; \
		echo "check-unit: $$(( $$(date +%s) - start )) s"; exit $$rc

# The model-based test at length over loopback: MODEL_SEEDS seeds of
# MODEL_STEPS steps, the seeds taking turns at the exact model, the lenient
# one, trims it does not see and a pause that may drop offers, over the
# MODEL_BACKEND backend (mem or virgl). Prints each failing seed's report
# (with its replay command) and a count.
MODEL_SEEDS ?= 100
MODEL_STEPS ?= 10000
MODEL_BACKEND ?= mem
.PHONY: model-long
model-long: build/tests/modeltest build/libvkmt-loopback.so
	@fail=0; for s in $$(seq 1 $(MODEL_SEEDS)); do \
		case $$((s % 4)) in 0) m=;; 1) m=--lenient;; 2) m=--blind-trims;; \
			3) m="--pause-at $$(($(MODEL_STEPS) / 2)) --pause-cmd true";; esac; \
		out=$$(VKMT_TRANSPORT=loopback VKMT_LOOPBACK_BACKEND=$(MODEL_BACKEND) \
			VKMT_LOOPBACK_LIB=$(CURDIR)/build/libvkmt-loopback.so \
			build/tests/modeltest --seed $$s --steps $(MODEL_STEPS) $$m 2>&1) || \
			{ fail=$$((fail + 1)); printf '%s\n' "$$out" | grep '^#  '; }; \
	done; echo "model-long: $(MODEL_SEEDS) seeds x $(MODEL_STEPS) steps ($(MODEL_BACKEND)), $$fail failed"; \
	test $$fail -eq 0

# The counting rules of tests/run-suites.sh, each against fake suites (~20 s).
.PHONY: check-selftest
check-selftest:
	@tests/selftest/run-suites-selftest.sh

# The mutant gate: each mutant of tests/mutants/mutants.txt, applied to a
# scratch copy of the tree, must make a fast suite fail (scripts/mutants.py;
# MUTANTS="NAME..." runs some).
.PHONY: mutants
mutants: | check-config
	@scripts/mutants.py $(foreach m,$(MUTANTS),--only $(m))

# The README's main command: everything from a fresh clone to a VM running
# the demo scenario (configure installs what is missing when run as root).
# BACKEND=virgl puts a virglrenderer GL buffer behind every allocation.
# SCENARIO=residency runs an application that answers the host's trim
# notification by offering, and shows the host memory it gave back.
BACKEND ?= mem
SCENARIO ?= offer
.PHONY: demo
demo:
	@test -f build/config.mk || ./configure
	@test "$(BACKEND)" != virgl || test "$$(sed -n 's/^WITH_VIRGL := //p' build/config.mk)" != 0 || \
		{ echo "demo: BACKEND=virgl needs the virgl backend (configured without it: see ./configure's output)" >&2; exit 1; }
	@$(MAKE) --no-print-directory qemu vm-image
	@case "$(SCENARIO)" in offer|residency) ;; *) echo "demo: SCENARIO=$(SCENARIO): use offer or residency" >&2; exit 1;; esac
	@echo "demo: booting the test VM (qboot, TCG unless KVM works) and running vkmt-demo (backend=$(BACKEND), scenario $(SCENARIO))"
	@scripts/vm-run --timeout 300 --device-props backend=$(BACKEND) -- vkmt-demo \
		$(if $(filter residency,$(SCENARIO)),--residency)

# Twice: with the kernel-checked pointer copies (the default) and without.
bench-host: build/bench/bench_host build/libvkmt-loopback.so
	@VKMT_TRANSPORT=loopback VKMT_LOOPBACK_LIB=$(CURDIR)/build/libvkmt-loopback.so \
		build/bench/bench_host
	@echo
	@VKMT_TRANSPORT=loopback VKMT_LOOPBACK_LIB=$(CURDIR)/build/libvkmt-loopback.so \
		VKMT_POINTER_CHECKS=0 build/bench/bench_host

install: all
	install -d $(DESTDIR)$(LIBDIR) $(DESTDIR)$(LIBDIR)/pkgconfig $(DESTDIR)$(PREFIX)/include/vkmt
	install -m 644 build/libvkmt.a $(DESTDIR)$(LIBDIR)/
	install -m 755 build/libvkmt.so.$(VERSION) build/libvkmt-loopback.so.$(SOVERSION) $(DESTDIR)$(LIBDIR)/
	ln -sf libvkmt.so.$(VERSION) $(DESTDIR)$(LIBDIR)/libvkmt.so.$(SOVERSION)
	ln -sf libvkmt.so.$(SOVERSION) $(DESTDIR)$(LIBDIR)/libvkmt.so
	install -m 644 guest-lib/include/d3dkmthk.h guest-lib/include/vkmt.h $(DESTDIR)$(PREFIX)/include/vkmt/
	install -m 644 build/vkmt.pc $(DESTDIR)$(LIBDIR)/pkgconfig/

uninstall:
	rm -f $(DESTDIR)$(LIBDIR)/libvkmt.a $(DESTDIR)$(LIBDIR)/libvkmt.so* \
		$(DESTDIR)$(LIBDIR)/libvkmt-loopback.so.$(SOVERSION) $(DESTDIR)$(LIBDIR)/pkgconfig/vkmt.pc
	rm -rf $(DESTDIR)$(PREFIX)/include/vkmt

FORMAT_FILES = $(shell git ls-files '*.c' '*.h')
format:
	clang-format -i $(FORMAT_FILES)
format-check:
	clang-format --dry-run --Werror $(FORMAT_FILES)

clean:
	rm -rf build/obj build/asan build/tests build/bench build/lib* build/*.pc

# QEMU's build tree (the next make qemu configures it again; ccache helps).
clean-qemu:
	rm -rf $(QEMU_BUILD) $(QEMU_BUILD)-configure.log

include mk/guest.mk
include mk/kmd.mk
include mk/fuzz-core.mk
include mk/fuzz-qemu.mk

# The test VM (docs/VM.md): build/vm holds Debian 12's cloud kernel and an
# initramfs with busybox, /init and the GUEST_FILES (HOST_FILE:GUEST_PATH
# pairs, host paths without ':'; mk/guest.mk adds the static guest programs).
# scripts/vm-image.sh rebuilds only when the package versions, itself or a
# file or its guest path changed; VM_REFRESH=1 asks Debian for newer packages.
# scripts/vm-run boots it: scripts/vm-run -- 'COMMAND'.
VM_DIR := build/vm
GUEST_FILES ?=
VM_HOST_FILES = $(foreach f,$(GUEST_FILES),$(firstword $(subst :, ,$(f))))
.PHONY: vm-image bench-vm
vm-image: $(VM_HOST_FILES)
	@$(if $(VKMT_CACHE),VKMT_CACHE='$(VKMT_CACHE)' )scripts/vm-image.sh \
		$(if $(VM_REFRESH),--refresh )$(VM_DIR) $(GUEST_FILES)

# Five boots running `true`: boot-to-command time (QEMU start to the
# command), min/median/max; the target is <= 3 s under TCG.
bench-vm: vm-image qemu
	@out=$$(for i in 1 2 3 4 5; do \
		scripts/vm-run --timeout 60 --image $(VM_DIR) -- true 2>&1 >/dev/null || exit 1; \
	done) || { echo "$$out" >&2; echo "bench-vm: a boot failed" >&2; exit 1; }; \
	accel=$$(echo "$$out" | sed -n 's/^vkmt-vm: accel \([a-z]*\).*/\1/p' | head -n 1); \
	echo "$$out" | sed -n 's/^vkmt-vm: boot-to-command //p' | sort -n | \
	awk -v accel="$$accel" '{ t[NR] = $$1 } END { printf "bench-vm: boot to command, %d boots, %s: min %.2f s, median %.2f s, max %.2f s (target <= 3 s under TCG)\n", NR, accel, t[1], t[int((NR + 1) / 2)], t[NR] }'

-include $(shell find build -path build/qemu -prune -o -path 'build/qemu-fuzz*' -prune -o \
	-path build/src -prune -o -name '*.d' -print 2>/dev/null)

# After the VM section: its prerequisites use VM_HOST_FILES.
include mk/bench.mk
