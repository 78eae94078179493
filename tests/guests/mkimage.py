#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Package a linked guest ELF as a bzImage (Linux x86 boot protocol 2.15,
Documentation/arch/x86/boot.rst) around the same bytes the PVH ELF loads.

The ELF links at 0x100000; its allocated sections become the protected-mode
part.  The setup part is one boot sector holding the setup header plus one
setup sector with the real-mode stub (setup16.bin, linked at 0x280)."""
import struct
import sys

LOAD_ADDR = 0x100000
STUB_OFF = 0x280


def elf_image(data):
    """Flat image of the PT_LOAD segments from LOAD_ADDR, and the memory
    size including .bss/.stack."""
    if data[:4] != b"\x7fELF" or data[4] != 2:
        sys.exit("mkimage: not an ELF64 file")
    phoff, = struct.unpack_from("<Q", data, 0x20)
    phentsize, phnum = struct.unpack_from("<HH", data, 0x36)
    flat = bytearray()
    mem_end = LOAD_ADDR
    for i in range(phnum):
        (ptype, _flags, off, _vaddr, paddr, filesz, memsz,
         _align) = struct.unpack_from("<IIQQQQQQ", data, phoff + i * phentsize)
        if ptype != 1:
            continue
        if paddr < LOAD_ADDR:
            sys.exit("mkimage: segment below 1 MiB")
        start = paddr - LOAD_ADDR
        if len(flat) < start + filesz:
            flat.extend(bytes(start + filesz - len(flat)))
        flat[start:start + filesz] = data[off:off + filesz]
        mem_end = max(mem_end, paddr + memsz)
    return bytes(flat), mem_end - LOAD_ADDR


def bzimage(flat, mem_size, stub):
    setup_sects = 1
    setup = bytearray(512 * (1 + setup_sects))
    if STUB_OFF + len(stub) > len(setup):
        sys.exit("mkimage: real-mode stub too large")
    setup[STUB_OFF:STUB_OFF + len(stub)] = stub
    pad = (-len(flat)) % 16
    flat = flat + bytes(pad)
    init_size = (max(mem_size, len(flat)) + 4095) & ~4095

    def put(fmt, off, *vals):
        struct.pack_into("<" + fmt, setup, off, *vals)

    put("B", 0x1f1, setup_sects)
    put("H", 0x1f2, 0)                  # root_flags
    put("I", 0x1f4, len(flat) // 16)    # syssize
    put("H", 0x1fa, 0xffff)             # vid_mode: normal
    put("H", 0x1fe, 0xaa55)             # boot_flag
    put("BB", 0x200, 0xeb, STUB_OFF - 0x202)  # jmp short to the stub
    setup[0x202:0x206] = b"HdrS"
    put("H", 0x206, 0x020f)             # protocol 2.15
    put("H", 0x20c, 0x1000)             # start_sys_seg (obsolete)
    put("B", 0x211, 0x01)               # loadflags: LOADED_HIGH
    put("I", 0x214, LOAD_ADDR)          # code32_start
    put("I", 0x22c, 0x7fffffff)         # initrd_addr_max
    put("I", 0x230, 0x200000)           # kernel_alignment
    put("B", 0x234, 0)                  # relocatable_kernel: no
    put("B", 0x235, 21)                 # min_alignment (log2)
    put("H", 0x236, 0x0001)             # xloadflags: XLF_KERNEL_64
    put("I", 0x238, 0xffff)             # cmdline_size (64 KiB incl. NUL)
    put("Q", 0x258, LOAD_ADDR)          # pref_address
    put("I", 0x260, init_size)
    return bytes(setup) + flat


def main():
    if len(sys.argv) != 4:
        sys.exit("usage: mkimage.py GUEST.elf setup16.bin OUT.bzImage")
    with open(sys.argv[1], "rb") as f:
        flat, mem_size = elf_image(f.read())
    with open(sys.argv[2], "rb") as f:
        stub = f.read()
    with open(sys.argv[3], "wb") as f:
        f.write(bzimage(flat, mem_size, stub))


if __name__ == "__main__":
    main()
