#!/usr/bin/env python3
"""Checks the presets of CMakePresets.json on this machine, as far as it allows.

  --configure-all    configure every preset; a preset this host can't build (CUDA for
                     aarch64 on an x86 host) must fail with its one-sentence reason
  --build P1,P2|all-x86|all-runnable
                     build these presets; CUDA ones must hold machine code for
                     exactly their SM target (cuobjdump --list-elf)
  --test P1,P2       run their tests (ctest; ARM presets run under qemu-aarch64)
  --compile-cuda P1,P2
                     compile only these presets' CUDA kernel files: a check, much
                     cheaper than a build, that code for newer targets (sm90
                     intrinsics, say) stays out of older ones

Prints a table and exits non-zero if any step failed.
"""
import argparse
import json
import os
import pathlib
import platform
import re
import shutil
import subprocess
import sys
import time

ROOT = pathlib.Path(__file__).resolve().parent.parent
MATRIX = json.loads((ROOT / "cmake" / "variants.json").read_text())
PRESETS = [p["name"] for p in json.loads((ROOT / "CMakePresets.json").read_text())["buildPresets"]]
HOST = "aarch64" if platform.machine() in ("aarch64", "arm64") else "x86_64"


def split(name):
    """(arch, isa) of a variant preset, or (None, None) for the special ones."""
    m = re.match(r"^(cpu|sm\d+)-(.+)$", name)
    return (m.group(1), m.group(2)) if m else (None, None)


def host_can_build(name):
    arch, isa = split(name)
    if arch is None or arch == "cpu":
        return True
    return MATRIX["cpu_isas"][isa]["host"] == HOST


def run(cmd, log):
    t = time.time()
    p = subprocess.run(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    log.write(f"$ {' '.join(cmd)}\n{p.stdout}\n")
    return p.returncode, p.stdout, time.time() - t


def configure(name, log):
    rc, out, dt = run(["cmake", "--preset", name], log)
    if host_can_build(name):
        return rc == 0, f"configured ({dt:.0f}s)" if rc == 0 else "configure failed"
    ok = rc != 0 and "must be configured on an aarch64 host" in " ".join(out.split())
    return ok, "refused with its reason" if ok else "expected a clear refusal"


def compile_cuda(name, log):
    """Builds the preset's kernels/cuda object files alone (ninja targets *.cu.o)."""
    bdir = ROOT / "build" / name
    rc, listing, _ = run(["cmake", "--build", str(bdir), "--", "-t", "targets", "all"], log)  # ninja's target list
    objs = sorted({line.split(":")[0] for line in listing.splitlines() if line.split(":")[0].endswith(".cu.o")})
    if rc != 0 or not objs:
        return False, "no CUDA objects to compile"
    rc, _, dt = run(["cmake", "--build", str(bdir), "--target", *objs], log)
    return rc == 0, (f"{len(objs)} CUDA files compiled ({dt:.0f}s)" if rc == 0 else "CUDA compile failed")


def find_cuobjdump():
    """cuobjdump from PATH, the CUDA toolkit, or the venv's nvidia-cuda-cuobjdump wheel."""
    for cand in [shutil.which("cuobjdump"), "/usr/local/cuda/bin/cuobjdump",
                 *sorted(map(str, (ROOT / ".venv").glob("lib/python*/site-packages/nvidia/*/bin/cuobjdump")))]:
        if cand and os.path.exists(cand):
            return cand
    sys.exit("cuobjdump not found: install the CUDA toolkit's or `pip install nvidia-cuda-cuobjdump` into .venv")


def check_cuda_arch(name):
    arch, _ = split(name)
    if arch is None or arch == "cpu":
        return True, ""
    lib = next((ROOT / "build" / name).glob("libtvops.so*"), None)
    tool = find_cuobjdump()
    out = subprocess.run([tool, "--list-elf", str(lib)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                         text=True).stdout
    found = sorted(set(re.findall(r"sm_(\d+a?)", out)))
    ptx = subprocess.run([tool, "--list-ptx", str(lib)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                         text=True).stdout
    has_ptx = bool(re.search(r"\.ptx", ptx))
    want = [arch[2:]]
    return found == want and not has_ptx, f"cuobjdump: sm_{','.join(found) or 'none'}{' + PTX' if has_ptx else ''}"


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--configure-all", action="store_true")
    ap.add_argument("--build", default="")
    ap.add_argument("--test", default="")
    ap.add_argument("--compile-cuda", default="")
    ap.add_argument("--log", default=str(ROOT / "build" / "verify_presets.log"))
    args = ap.parse_args()

    build = args.build.split(",") if args.build else []
    if build == ["all-x86"]:
        build = [p for p in PRESETS if split(p)[1] and MATRIX["cpu_isas"][split(p)[1]]["host"] == "x86_64"]
    elif build == ["all-runnable"]:
        build = [p for p in PRESETS if host_can_build(p)]
    tests = args.test.split(",") if args.test else []
    kernels = args.compile_cuda.split(",") if args.compile_cuda else []
    for p in build + tests + kernels:
        if p not in PRESETS:
            sys.exit(f"unknown preset {p}")

    (ROOT / "build").mkdir(exist_ok=True)
    rows, failed = [], 0
    with open(args.log, "w") as log:
        to_configure = PRESETS if args.configure_all else []
        for name in dict.fromkeys(to_configure + build + tests + kernels):
            ok, what = configure(name, log)
            steps = [what]
            if ok and name in kernels and name not in build and host_can_build(name):
                ok, what = compile_cuda(name, log)
                steps.append(what)
            if ok and name in build + tests and host_can_build(name):
                rc, _, dt = run(["cmake", "--build", "--preset", name], log)
                ok = rc == 0
                steps.append(f"built ({dt:.0f}s)" if ok else "build failed")
                if ok:
                    ok, what = check_cuda_arch(name)
                    if what:
                        steps.append(what)
            if ok and name in tests and host_can_build(name):
                rc, out, dt = run(["ctest", "--preset", name, "-j", str(os.cpu_count() or 2)], log)
                summary = re.findall(r"(\d+% tests passed.*)", out)
                ok = rc == 0
                steps.append((summary[-1] if summary else "tests failed") + f" ({dt:.0f}s)")
            failed += not ok
            rows.append((name, "ok" if ok else "FAILED", "; ".join(steps)))
            print(f"{name:22s} {'ok' if ok else 'FAILED':6s} {'; '.join(steps)}", flush=True)
    print(f"\n{len(rows) - failed} ok, {failed} failed (log: {args.log})")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
