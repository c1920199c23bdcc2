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
	@scripts/bench.sh build/bench

# Paste build/bench/results.md into README.md between its bench markers.
.PHONY: bench-readme
bench-readme:
	@test -f build/bench/results.md || { echo "run make bench first" >&2; exit 1; }
	@grep -q '^<!-- bench:begin -->$$' README.md && grep -q '^<!-- bench:end -->$$' README.md || \
		{ echo "README.md lacks the <!-- bench:begin/end --> markers" >&2; exit 1; }
	@awk -v table=build/bench/results.md \
		'/^<!-- bench:end -->$$/ { skip = 0 } !skip { print } \
		/^<!-- bench:begin -->$$/ { while ((getline l < table) > 0) print l; skip = 1 }' \
		README.md > README.md.tmp && mv README.md.tmp README.md
	@echo "bench-readme: README.md now shows build/bench/results.md"
