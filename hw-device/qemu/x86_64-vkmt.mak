# A small x86_64 machine set for vkmt: the two PC machines, the vkmt device,
# virtio over PCI, and two baselines for make bench: QEMU's edu device and
# virtio-gpu (2D, pixman; the peer a user would pick today).
CONFIG_Q35=y
CONFIG_I440FX=y
CONFIG_VKMT=y
CONFIG_EDU=y
CONFIG_VIRTIO_PCI=y
CONFIG_VIRTIO_GPU=y
