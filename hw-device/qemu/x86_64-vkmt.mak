# A small x86_64 machine set for vkmt: the two PC machines, the vkmt device,
# QEMU's edu device (a baseline for benchmarks) and virtio over PCI.
CONFIG_Q35=y
CONFIG_I440FX=y
CONFIG_VKMT=y
CONFIG_EDU=y
CONFIG_VIRTIO_PCI=y
