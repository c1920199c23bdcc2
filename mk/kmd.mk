# The guest kernel driver (guest-kmd/, docs/KMD.md), built for exactly the
# kernel of the test VM image (build/vm/kernel-version) against Debian's
# headers of that kernel, which scripts/kmd-headers.sh fetches into the cache
# (nothing is installed on the host). Kbuild works in build/kmd/, where the
# sources are linked, so guest-kmd/ stays clean. The image carries the
# module and a loader, but nothing loads it at boot: tests/vm/kmd-load.sh does.
KMD_DIR := build/kmd
KMD_SRC := guest-kmd/Kbuild $(wildcard guest-kmd/*.[ch])

.PHONY: kmd kmd-force
kmd: $(KMD_DIR)/vkmt.ko

# The image's kernel, copied only when it changed (the module then rebuilds);
# an image not built yet is built plain first, to pin the kernel version.
$(KMD_DIR)/kernel-version: kmd-force
	@test -f $(VM_DIR)/kernel-version || scripts/vm-image.sh $(VM_DIR)
	@mkdir -p $(@D)
	@cmp -s $(VM_DIR)/kernel-version $@ || cp $(VM_DIR)/kernel-version $@

$(KMD_DIR)/vkmt.ko: $(KMD_SRC) guest-kmd/uapi/vkmt_kmd.h protocol/vkmt_proto.h \
		$(KMD_DIR)/kernel-version
	@find $(KMD_DIR) -maxdepth 1 -type l -delete
	@for f in $(KMD_SRC); do ln -s ../../$$f $(KMD_DIR)/; done
	@hdrs=$$($(if $(VKMT_CACHE),VKMT_CACHE='$(VKMT_CACHE)' )scripts/kmd-headers.sh $(VM_DIR)) && \
		$(MAKE) --no-print-directory -C "$$hdrs" M=$(CURDIR)/$(KMD_DIR) VKMT_TOP=$(CURDIR) modules

GUEST_FILES += $(KMD_DIR)/vkmt.ko:/lib/vkmt.ko tests/vm/kmd-load.sh:/usr/bin/kmd-load
