#!/bin/sh
# SPDX-License-Identifier: MIT
# Usage: scripts/qemu-overlay.sh QEMU_SRC REPO
# Overlays the vkmt device onto a QEMU 10.0 source tree; idempotent.
#   hw/vkmt                                 -> REPO/hw-device (Kconfig, meson.build,
#                                              trace-events, core/, qemu/, protocol)
#   configs/devices/x86_64-softmmu/vkmt.mak -> REPO/hw-device/qemu/x86_64-vkmt.mak
#   tests/qtest/vkmt-test.c                 -> REPO/tests/qtest/vkmt-test.c
#   tests/qtest/vkmt_bad_cmds.h             -> REPO/tests/vkmt_bad_cmds.h (its
#                                              malformed commands, shared)
#   tests/qtest/fuzz/vkmt                   -> REPO/tests/qtest/fuzz (the vkmt-fuzz target)
# and edits seven of QEMU's files: hw/Kconfig (source vkmt/Kconfig),
# hw/meson.build (subdir('vkmt')), meson.build ('hw/vkmt' in
# trace_events_subdirs), tests/qtest/meson.build (vkmt-test for x86_64
# when CONFIG_VKMT is set), tests/qtest/fuzz/meson.build (vkmt/vkmt_fuzz.c
# in qemu-fuzz-* when CONFIG_VKMT is set; read only by --enable-fuzzing
# builds), tests/qtest/fuzz/generic_fuzz_configs.h (a generic-fuzz-vkmt
# config for the register and MSI-X surface), include/exec/ram_addr.h (a
# fix: below). Every edit is an exact-string
# insertion next to an anchor that must occur exactly once; if any anchor is
# missing nothing is edited and the script fails. An edit already made is
# left alone. Files are replaced (written aside, then renamed), never written
# into, because the tree may be made of hard links into a shared cache.
# Messages go to stdout.
set -eu

[ $# -eq 2 ] || { echo "usage: $0 QEMU_SRC REPO" >&2; exit 2; }
qemu=$1
repo=$(cd "$2" && pwd)
say() { printf 'qemu-overlay: %s\n' "$*"; }
die() { printf 'qemu-overlay: error: %s\n' "$*" >&2; exit 1; }

[ -f "$qemu/VERSION" ] && [ -f "$qemu/hw/Kconfig" ] || die "$qemu is not a QEMU source tree"
changed=0

link() { # PATH-IN-QEMU TARGET
    path=$qemu/$1
    if [ -L "$path" ]; then
        old=$(readlink "$path")
        [ "$old" = "$2" ] && return 0
        say "$1 pointed to $old; now $2"
        ln -sfn "$2" "$path"
    elif [ -e "$path" ]; then
        die "$path exists and is not the overlay's link; remove it or use another tree"
    else
        say "$1 -> $2"
        ln -s "$2" "$path"
    fi
    changed=1
}

for p in hw/vkmt configs/devices/x86_64-softmmu/vkmt.mak tests/qtest/vkmt-test.c \
    tests/qtest/vkmt_bad_cmds.h tests/qtest/fuzz/vkmt; do
    [ -L "$qemu/$p" ] || [ ! -e "$qemu/$p" ] ||
        die "$qemu/$p exists and is not the overlay's link; remove it or use another tree"
done

# Each edit: file, the text whose presence means "done", the anchor, and what
# replaces the anchor.
out=$(python3 - "$qemu" <<'PY'
import os, sys, tempfile

qemu = sys.argv[1]
EDITS = [
    ("hw/Kconfig",
     "\nsource vkmt/Kconfig\n",
     "\nsource watchdog/Kconfig\n",
     "\nsource watchdog/Kconfig\nsource vkmt/Kconfig\n"),
    ("hw/meson.build",
     "\nsubdir('vkmt')\n",
     "\nsubdir('fsi')\n",
     "\nsubdir('fsi')\nsubdir('vkmt')\n"),
    ("meson.build",
     "\n    'hw/vkmt',\n",
     "\n    'hw/misc',\n",
     "\n    'hw/misc',\n    'hw/vkmt',\n"),
    ("tests/qtest/meson.build",
     "['vkmt-test']",
     "\nqtests_x86_64 = qtests_i386\n",
     "\nqtests_x86_64 = qtests_i386\n"
     "qtests_x86_64 += (config_all_devices.has_key('CONFIG_VKMT') ? ['vkmt-test'] : [])\n"),
    # vkmt-test.c reaches the wire contract as #include "vkmt_proto.h".
    ("tests/qtest/meson.build",
     "\n  'vkmt-test': ",
     "\nqtest_executables = {}\n",
     "\nqtests += {\n"
     "  'vkmt-test': declare_dependency(\n"
     "    include_directories: include_directories('../../hw/vkmt/protocol')),\n"
     "}\n\nqtest_executables = {}\n"),
    # The device-specific fuzz target; fuzz/meson.build stops at its first
    # line unless QEMU was configured with --enable-fuzzing.
    ("tests/qtest/fuzz/meson.build",
     "'vkmt/vkmt_fuzz.c'",
     "\nspecific_fuzz_ss.add(files('generic_fuzz.c'))\n",
     "\nspecific_fuzz_ss.add(files('generic_fuzz.c'))\n"
     "specific_fuzz_ss.add(when: 'CONFIG_VKMT', if_true: files('vkmt/vkmt_fuzz.c'))\n"),
    # generic-fuzz-vkmt: QEMU's generic fuzzer over the device's MMIO
    # (registers, MSI-X); it cannot see the RAM BARs, vkmt-fuzz drives those.
    ("tests/qtest/fuzz/generic_fuzz_configs.h",
     '.name = "vkmt",',
     '        .objects = "parallel*",\n    }\n};\n',
     '        .objects = "parallel*",\n    },{\n'
     '        .name = "vkmt",\n'
     '        .args = "-machine q35 -nodefaults -device vkmt",\n'
     '        .objects = "vkmt*",\n    }\n};\n'),
    # A fix of QEMU 10.0: under TCG, a migration's dirty-bitmap sync marks
    # translated writes clean again at the block's offset within itself, not
    # in ram_addr space. For every RAM block but the first (guest RAM after
    # a -object memory backend, the device's own RAM) that trips an assertion
    # or resets the wrong block, so writes made after the sync are not sent.
    ("include/exec/ram_addr.h",
     "cpu_physical_memory_dirty_bits_cleared(rb->offset + start, length);",
     "            cpu_physical_memory_dirty_bits_cleared(start, length);\n",
     "            cpu_physical_memory_dirty_bits_cleared(rb->offset + start, length);\n"),
]

texts = {}
todo = []
for name, done, anchor, new in EDITS:
    path = os.path.join(qemu, name)
    if name not in texts:
        with open(path) as f:
            texts[name] = "\n" + f.read()  # so that anchors may start a line
    text = texts[name]
    if done in text:
        continue
    n = text.count(anchor)
    if n != 1:
        sys.exit("qemu-overlay: error: %s: anchor %r found %d times, expected once; "
                 "nothing was edited" % (path, anchor.strip("\n"), n))
    texts[name] = text.replace(anchor, new)
    todo.append(name)

for name in dict.fromkeys(todo):
    path = os.path.join(qemu, name)
    mode = os.stat(path).st_mode & 0o7777
    fd, tmp = tempfile.mkstemp(dir=os.path.dirname(path), prefix=".vkmt-")
    with os.fdopen(fd, "w") as f:
        f.write(texts[name][1:])
    os.chmod(tmp, mode)
    os.replace(tmp, path)
    print("edited " + name)
PY
) || exit 1
# The links last: a tree whose text does not match is left as it was.
link hw/vkmt "$repo/hw-device"
link configs/devices/x86_64-softmmu/vkmt.mak "$repo/hw-device/qemu/x86_64-vkmt.mak"
link tests/qtest/vkmt-test.c "$repo/tests/qtest/vkmt-test.c"
link tests/qtest/vkmt_bad_cmds.h "$repo/tests/vkmt_bad_cmds.h"
link tests/qtest/fuzz/vkmt "$repo/tests/qtest/fuzz"
if [ -n "$out" ]; then
    echo "$out" | sed 's/^/qemu-overlay: /'
    changed=1
fi
[ "$changed" = 1 ] || say "$qemu already carries the vkmt overlay"
