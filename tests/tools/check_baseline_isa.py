#!/usr/bin/env python3
"""Checks that only the per-tier kernels of libtvops use wide vector registers.

The library promises that a CPU too old for the build gets a clear error, not
SIGILL: everything outside the tier namespaces (tvops::cpu::<tier>::) runs before
the CPU check or on any CPU, so it must not contain AVX/AVX-512 (ymm/zmm) or SVE
(z registers) instructions. A shared template instantiated only in tier code would
break this silently (the linker keeps one copy); this test finds it.

    check_baseline_isa.py path/to/libtvops.so [objdump]
"""
import re
import subprocess
import sys


def main():
    lib = sys.argv[1]
    objdump = sys.argv[2] if len(sys.argv) > 2 else "objdump"
    text = subprocess.run([objdump, "-d", "--no-show-raw-insn", "-C", lib], check=True, stdout=subprocess.PIPE,
                          text=True).stdout
    wide = re.compile(r"%[yz]mm\d|\bz\d+\.[bhsdq]\b|\bp\d+/[zm]\b")  # x86 AVX/AVX-512, Arm SVE
    bad, function = set(), None
    for line in text.splitlines():
        header = re.match(r"^[0-9a-f]+ <(.*)>:$", line)
        if header:
            function = header.group(1)
            continue
        # Tier kernels and xsimd's kernels (templates on the target arch, so one copy per
        # arch; out of line in debug builds) may use the wide registers.
        if function and "tvops::cpu::" not in function and "xsimd::" not in function and wide.search(line):
            bad.add(function)
    # The CUDA runtime (statically linked) dispatches on the CPU itself.
    bad = {f for f in bad if not re.match(r"^(cuda|__cuda|libcudart|_Z\w*cuda)", f)}
    if bad:
        print("wide vector instructions outside the tier namespaces:")
        for f in sorted(bad):
            print("  " + f)
        return 1
    print("baseline code uses no wide vector registers")
    return 0


if __name__ == "__main__":
    sys.exit(main())
