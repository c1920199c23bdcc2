# A small x86_64 machine set for vkmt: the two PC machines, the vkmt device,
# virtio over PCI, two baselines for make bench (QEMU's edu device and
# virtio-gpu, 2D, pixman; the peer a user would pick today) and PCI(e) bridges.
CONFIG_Q35=y
CONFIG_I440FX=y
CONFIG_VKMT=y
CONFIG_EDU=y
CONFIG_VIRTIO_PCI=y
CONFIG_VIRTIO_GPU=y
# Where users put the device on q35: behind a pcie-root-port (PCIE_PORT;
# PCI_EXPRESS and MSI_NONBROKEN come with Q35) or a pci-bridge. The qtests and
# the fuzzer need them to reach a root port's or bridge's reset and slot
# controls from the device's own MSI-X writes.
CONFIG_PCIE_PORT=y
CONFIG_PCI_BRIDGE=y
