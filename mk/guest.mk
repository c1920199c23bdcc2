# Static programs for the test VM's initramfs, linked against libvkmt.a with
# its PCI and kmd transports (no dlopen happens at run time: the loopback
# transport is never chosen in the guest, so glibc's static-dlopen warning is
# harmless).
GUEST_PROGS := build/guest/vkmtctl build/guest/vkmt-demo build/guest/conformance \
	build/guest/test_reap build/guest/vkmt-bench build/guest/test_kmd build/guest/as-nobody \
	build/guest/test_unplug build/guest/test_migrate build/guest/modeltest build/guest/test_squeeze

build/guest/vkmtctl: build/obj/tools/vkmtctl.o build/libvkmt.a
build/guest/vkmt-demo: build/obj/tools/vkmt-demo.o build/libvkmt.a
build/guest/conformance: $(CONF_SRC:%.c=build/obj/%.o) build/obj/$(HARNESS:.c=.o) build/libvkmt.a
build/guest/test_reap: build/obj/tests/vm/test_reap.o build/obj/$(HARNESS:.c=.o) build/libvkmt.a
build/guest/test_unplug: build/obj/tests/vm/test_unplug.o build/obj/tests/vm/vm_host.o \
	build/obj/$(HARNESS:.c=.o) build/libvkmt.a
build/guest/test_migrate: build/obj/tests/vm/test_migrate.o build/obj/tests/vm/vm_host.o \
	build/obj/tests/conformance/conf_util.o build/obj/$(HARNESS:.c=.o) build/libvkmt.a
build/obj/tests/vm/test_migrate.o: INC = $(INC_TOOLS) -Itests -Itests/conformance
build/guest/test_squeeze: build/obj/tests/vm/test_squeeze.o build/obj/tests/vm/vm_host.o \
	build/obj/tests/conformance/conf_util.o build/obj/$(HARNESS:.c=.o) build/libvkmt.a
build/obj/tests/vm/test_squeeze.o: INC = $(INC_TOOLS) -Itests -Itests/conformance
build/guest/modeltest: $(MODEL_SRC:%.c=build/obj/%.o) build/obj/$(HARNESS:.c=.o) build/libvkmt.a
# The guest kernel driver's ioctl test: protocol and uAPI headers, no libvkmt.
build/guest/test_kmd: build/obj/tests/vm/test_kmd.o build/obj/$(HARNESS:.c=.o)
build/obj/tests/vm/test_kmd.o: INC = $(INC_TOOLS) -Itests -Iguest-kmd/uapi
build/guest/as-nobody: build/obj/tests/vm/as_nobody.o
build/guest/vkmt-bench: build/obj/bench/bench_vm.o build/obj/bench/bench_kmd.o \
	build/obj/bench/bench_migrate.o build/obj/bench/bench_notify.o build/obj/bench/bench_common.o \
	build/libvkmt.a
# The driver's NOP ioctl: its uAPI header.
build/obj/bench/bench_kmd.o: INC = $(INC_TOOLS) -Iguest-kmd/uapi
$(GUEST_PROGS):
	@mkdir -p $(@D)
	$(CC) -static -O2 -o $@ $^ -lpthread -ldl

.PHONY: guest
guest: $(GUEST_PROGS)

# What the VM image carries (scripts/vm-image.sh: HOST_FILE:GUEST_PATH).
GUEST_FILES += build/guest/vkmtctl:/usr/bin/vkmtctl build/guest/vkmt-demo:/usr/bin/vkmt-demo \
	build/guest/conformance:/usr/bin/conformance build/guest/test_reap:/usr/bin/test_reap \
	tests/vm/vm-suites.sh:/usr/bin/vm-suites build/guest/vkmt-bench:/usr/bin/vkmt-bench \
	build/guest/as-nobody:/usr/bin/as-nobody \
	build/guest/test_kmd:/usr/bin/test_kmd build/guest/test_unplug:/usr/bin/test_unplug \
	build/guest/test_migrate:/usr/bin/test_migrate build/guest/modeltest:/usr/bin/modeltest \
	tests/vm/vm-save-restore.sh:/usr/bin/vm-save-restore \
	build/guest/test_squeeze:/usr/bin/test_squeeze
