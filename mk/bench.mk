# make bench (docs/BENCH.md): every figure of the benchmark table in one run,
# written to build/bench/results.{json,md,png} by scripts/bench.sh.
#
# The in-VM half needs a second guest image: the virtio-gpu baseline needs
# Debian's generic kernel and its DRM modules (the cloud kernel of build/vm
# has no DRM). build/vm-bench is that image with the same guest programs.
BENCH_VM_DIR := build/vm-bench
BENCH_VM_MODULES := virtio_pci,virtio-gpu

.PHONY: bench vm-bench-image
vm-bench-image: $(VM_HOST_FILES)
	@$(if $(VKMT_CACHE),VKMT_CACHE='$(VKMT_CACHE)' )scripts/vm-image.sh \
		$(if $(VM_REFRESH),--refresh )--generic-kernel $(BENCH_VM_MODULES) $(BENCH_VM_DIR) \
		$(GUEST_FILES)

bench: build/bench/bench_host build/libvkmt-loopback.so qemu vm-image vm-bench-image
	@BENCH_BACKENDS="mem$(if $(filter 1,$(WITH_VIRGL)), virgl)" scripts/bench.sh build/bench
	@$(MAKE) --no-print-directory bench-docs

# Paste build/bench/results.md into docs/BENCH.md between its bench markers
# (make bench does it after every run; committing the file publishes it).
.PHONY: bench-docs
bench-docs:
	@test -f build/bench/results.md || { echo "run make bench first" >&2; exit 1; }
	@grep -q '^<!-- bench:begin -->$$' docs/BENCH.md && grep -q '^<!-- bench:end -->$$' docs/BENCH.md || \
		{ echo "docs/BENCH.md lacks the <!-- bench:begin/end --> markers" >&2; exit 1; }
	@awk -v table=build/bench/results.md \
		'/^<!-- bench:end -->$$/ { skip = 0 } !skip { print } \
		/^<!-- bench:begin -->$$/ { while ((getline l < table) > 0) print l; skip = 1 }' \
		docs/BENCH.md > docs/BENCH.md.tmp && mv docs/BENCH.md.tmp docs/BENCH.md
	@echo "bench-docs: docs/BENCH.md now shows build/bench/results.md"
