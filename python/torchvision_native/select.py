"""Which tvops variant this machine should install, the command that installs it, and why.

    python -m torchvision_native.select                      # this machine
    python -m torchvision_native.select --nvidia-smi FILE --cpuinfo FILE   # recorded outputs
    python -m torchvision_native.select --format variant     # just the name (or wheel, json)

The GPU: its compute capability from `nvidia-smi --query-gpu=name,compute_cap
--format=csv,noheader`, or, without nvidia-smi, its model name from the driver's
/proc/driver/nvidia/gpus/*/information matched against the matrix's example GPUs. The
first GPU decides, as the library's own check uses device 0. The CPU: the flags line of
/proc/cpuinfo ("flags" on x86, "Features" on Arm). Both map onto the variant matrix
(cmake/variants.json, here as the generated _matrix.py): the GPU target is the newest
SM of the same major whose minor is not above the GPU's (a cubin's compatibility rule,
as csrc/dispatch/variant.cpp applies it), the CPU ISA the first of isa_preference whose
cpu_features the CPU has.

Pure Python with no dependency and no native code. packaging/select-variant.sh is the
same rules in POSIX sh for machines without the package; tests/packaging checks that both
give the same output on recorded machines. A variant that this machine can't run fails at
import with an error that names the variant to install instead.
"""
import argparse
import glob
import json
import os
import re
import shutil
import subprocess
import sys

from ._matrix import MATRIX

NVIDIA_SMI_QUERY = ["--query-gpu=name,compute_cap", "--format=csv,noheader"]
DRIVER_DIR = "/proc/driver/nvidia/gpus"


# ---------------------------------------------------------------- names ----

def variants():
    """Every variant of the matrix, as the presets name them: cpu-avx2, sm120-avx512, ..."""
    archs = ["cpu"] + list(MATRIX["cuda_archs"])
    return [f"{arch}-{isa}" for arch in archs for isa in MATRIX["cpu_isas"]]


def split_variant(variant):
    """("sm120", "avx512") of "sm120-avx512"; ValueError for a name the matrix lacks."""
    if variant not in variants():
        raise ValueError(f"unknown variant {variant!r}: not in cmake/variants.json")
    arch, isa = variant.split("-", 1)
    return arch, isa


def wheel_name(variant):
    """The wheel's distribution name: torchvision-native-cpu-avx2, torchvision-native-cuda13-sm120-avx512."""
    arch, isa = split_variant(variant)
    packages = MATRIX["packages"]
    template = packages["wheel_cpu"] if arch == "cpu" else packages["wheel_cuda"]
    return template.format(cuda_major=MATRIX["cuda"]["major"], arch=arch, isa=isa)


def package_name(variant, kind="cpack"):
    """The C++ package (kind "cpack") or nix/flox recipe (kind "recipe") name of a variant."""
    split_variant(variant)
    return MATRIX["packages"][kind].format(variant=variant)


def normalize(name):
    """A distribution name as PEP 503 compares them (torchvision_native_cpu_armv8_2 -> ...-armv8-2)."""
    return re.sub(r"[-_.]+", "-", name).lower()


def variant_from_wheel(name):
    """The variant of a wheel distribution name (any spelling pip accepts); None if it isn't one."""
    by_name = {normalize(wheel_name(v)): v for v in variants()}
    return by_name.get(normalize(name))


# --------------------------------------------------------------- inputs ----

def parse_nvidia_smi(text):
    """[(name, cc)] from `nvidia-smi --query-gpu=name,compute_cap --format=csv,noheader`; cc 120 for 12.0."""
    gpus = []
    for line in text.splitlines():
        name, sep, cap = line.rpartition(",")
        m = re.fullmatch(r"\s*(\d+)\.(\d+)\s*", cap)
        if sep and m:
            gpus.append((name.strip(), int(m.group(1)) * 10 + int(m.group(2))))
    return gpus


def parse_driver_information(text):
    """The model name in one /proc/driver/nvidia/gpus/<bus>/information file ("" if none)."""
    m = re.search(r"^Model:[ \t]*(.*?)[ \t]*$", text, re.M)
    return m.group(1) if m else ""


def parse_cpuinfo(text):
    """(arch, model, flags) from /proc/cpuinfo: "x86_64" with its "flags" line, "aarch64" with "Features"."""
    arch, flags, model = "unknown", [], ""
    m = re.search(r"^(flags|Features)[ \t]*:(.*)$", text, re.M)
    if m:
        arch = "x86_64" if m.group(1) == "flags" else "aarch64"
        flags = m.group(2).split()
    m = re.search(r"^model name[ \t]*:[ \t]*(.*?)[ \t]*$", text, re.M)
    if m:
        model = m.group(1)
    return arch, model or arch, flags


def read_nvidia_smi():
    tool = shutil.which("nvidia-smi")
    if not tool:
        return ""
    try:
        return subprocess.run([tool, *NVIDIA_SMI_QUERY], capture_output=True, text=True, timeout=30).stdout
    except (OSError, subprocess.SubprocessError):
        return ""


def read_driver_models(driver_dir):
    models = []
    for path in sorted(glob.glob(os.path.join(driver_dir, "*", "information"))):
        with open(path, errors="replace") as f:
            model = parse_driver_information(f.read())
        if model:
            models.append(model)
    return models


# ---------------------------------------------------------------- rules ----

def cuda_target(cc):
    """The matrix's SM target for a compute capability (120 for 12.0): the newest of the same
    major whose minor is not above the GPU's; None if the matrix has none."""
    best = None
    for arch, spec in MATRIX["cuda_archs"].items():
        built = spec["cc"]
        if built // 10 == cc // 10 and built % 10 <= cc % 10 and (best is None or built > MATRIX["cuda_archs"][best]["cc"]):
            best = arch
    return best


def _mentions(name, example):
    return re.search(r"(?<![A-Za-z0-9_])" + re.escape(example) + r"(?![A-Za-z0-9_])", name) is not None


def cuda_target_from_model(name):
    """The SM target of a GPU known by model name only: the arch whose example GPU names it
    (as a whole word; the longest example wins: "L40S" before "L4")."""
    best, best_len = None, 0
    for arch, spec in MATRIX["cuda_archs"].items():
        for example in spec["examples"]:
            if len(example) > best_len and _mentions(name, example):
                best, best_len = arch, len(example)
    return best


def cpuinfo_flags_of(isa):
    """The /proc/cpuinfo flags an ISA needs (its cpu_features, as /proc/cpuinfo spells them)."""
    spelling = MATRIX["cpuinfo_spelling"]
    return [spelling.get(f, f) for f in MATRIX["cpu_isas"][isa]["cpu_features"]]


def cpu_isa(arch, flags):
    """The first ISA of isa_preference for this architecture whose flags the CPU has; None if none."""
    have = set(flags)
    for isa in MATRIX["isa_preference"]:
        if MATRIX["cpu_isas"][isa]["host"] == arch and all(f in have for f in cpuinfo_flags_of(isa)):
            return isa
    return None


def _gpu_reason(gpus, models):
    """(arch, reason) for the GPU part of the recommendation; arch "cpu" when no variant uses it."""
    archs = list(MATRIX["cuda_archs"])
    driver = f"needs an NVIDIA driver for CUDA {MATRIX['cuda']['major']}, {MATRIX['cuda']['driver']}"
    if gpus:
        name, cc = gpus[0]
        arch = cuda_target(cc)
        cap = f"{cc // 10}.{cc % 10}"
        if arch:
            return arch, f'GPU "{name}" has compute capability {cap}, which runs {arch} kernels ({driver})'
        return "cpu", (f'GPU "{name}" has compute capability {cap}, which no variant has kernels for '
                       f"({archs[0]} to {archs[-1]}), so a CPU-only variant")
    if models:
        arch = cuda_target_from_model(models[0])
        if arch:
            return arch, (f'GPU "{models[0]}" (model name from the driver; no nvidia-smi) is an {arch} GPU '
                          f"({driver})")
        return "cpu", (f'GPU "{models[0]}" (model name from the driver; no nvidia-smi) is none of the '
                       "matrix's example GPUs, so a CPU-only variant")
    return "cpu", "no NVIDIA GPU found (nvidia-smi, /proc/driver/nvidia), so a CPU-only variant"


def recommend(nvidia_smi="", driver_models=(), cpuinfo=""):
    """{"variant", "wheel", "install", "reason"} from recorded inputs: nvidia-smi's output,
    the driver's model names (used without nvidia-smi output) and /proc/cpuinfo's text.
    "variant" is "none" when the CPU runs no ISA of the matrix."""
    gpus = parse_nvidia_smi(nvidia_smi)
    arch, gpu_why = _gpu_reason(gpus, [] if gpus else list(driver_models))
    cpu_arch, model, flags = parse_cpuinfo(cpuinfo)
    isa = cpu_isa(cpu_arch, flags)
    if isa is None:
        roots = [i for i in MATRIX["isa_preference"] if MATRIX["cpu_isas"][i]["host"] == cpu_arch]
        need = " ".join(cpuinfo_flags_of(roots[-1])) if roots else "an x86_64 or aarch64 CPU"
        reason = f"the CPU ({model}) lacks what every {cpu_arch} variant needs ({need}); {gpu_why}"
        return {"variant": "none", "wheel": None, "install": "nothing: no variant runs on this CPU", "reason": reason}
    variant = f"{arch}-{isa}"
    wheel = wheel_name(variant)
    cpu_why = f"the CPU ({model}) has {' '.join(cpuinfo_flags_of(isa))}, which runs {isa} kernels"
    return {"variant": variant, "wheel": wheel, "install": f"pip install {wheel}", "reason": f"{gpu_why}; {cpu_why}"}


def format_text(rec):
    build = f"build: python3 packaging/build_wheel.py {rec['variant']}  (from a tvops checkout, into dist/)\n"
    return (f"variant: {rec['variant']}\ninstall: {rec['install']}\n{build if rec['wheel'] else ''}"
            f"reason: {rec['reason']}\n")


def main(argv=None):
    ap = argparse.ArgumentParser(prog="python -m torchvision_native.select", description=__doc__.split("\n\n")[0])
    ap.add_argument("--nvidia-smi", metavar="FILE", help="recorded nvidia-smi output instead of running it")
    ap.add_argument("--driver-dir", metavar="DIR", help=f"the driver's GPU folder (default {DRIVER_DIR}; "
                    "with --nvidia-smi, read only when given)")
    ap.add_argument("--cpuinfo", metavar="FILE", default="/proc/cpuinfo")
    ap.add_argument("--format", choices=["text", "variant", "wheel", "json"], default="text")
    args = ap.parse_args(argv)

    if args.nvidia_smi is not None:
        with open(args.nvidia_smi) as f:
            smi = f.read()
    else:
        smi = read_nvidia_smi()
    driver_dir = args.driver_dir or (None if args.nvidia_smi is not None else DRIVER_DIR)
    models = read_driver_models(driver_dir) if driver_dir else []
    try:
        with open(args.cpuinfo, errors="replace") as f:
            cpuinfo = f.read()
    except OSError:
        cpuinfo = ""
    rec = recommend(smi, models, cpuinfo)
    if args.format == "text":
        sys.stdout.write(format_text(rec))
    elif args.format == "json":
        print(json.dumps(rec, indent=2))
    else:
        print(rec[args.format] or "none")
    return 0 if rec["wheel"] else 1


if __name__ == "__main__":
    sys.exit(main())
