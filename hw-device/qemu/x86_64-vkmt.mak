# A small x86_64 machine set for vkmt: the two PC machines, the vkmt device,
# virtio over PCI, and two baselines for make bench: QEMU's edu device and
# virtio-gpu (2D, pixman; the peer a user would pick today). pcie-root-port
# and pci-bridge place vkmt where users' machines put it (behind a root port
# with hot-plug, or an SHPC bridge): the qtests and the fuzzer need them.
CONFIG_Q35=y
CONFIG_I440FX=y
CONFIG_VKMT=y
CONFIG_EDU=y
CONFIG_VIRTIO_PCI=y
CONFIG_VIRTIO_GPU=y
CONFIG_PCIE_PORT=y
CONFIG_PCI_BRIDGE=y
