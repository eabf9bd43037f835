#!/usr/bin/env python3
"""Write CMakePresets.json from the variant matrix in cmake/variants.json.

Every combination of a GPU target (or "cpu") and a CPU ISA becomes a preset named
<arch>-<isa> (sm120-avx512, cpu-armv9, ...) with configure, build, test, package and
workflow steps, plus the special presets (dev, native, release, asan). The package
presets make a tar.gz and a .deb of libtvops.so, its headers and CMake package
(cmake/TvopsInstall.cmake); packaging/gen_packaging.py writes the rest of what the
matrix drives (recommender tables, wheel names, nix/flox recipes).

    python3 cmake/gen_presets.py          # rewrite CMakePresets.json
    python3 cmake/gen_presets.py --check  # exit 1 if the committed file is stale
"""
import argparse
import json
import pathlib
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent
MATRIX = ROOT / "cmake" / "variants.json"
OUTPUT = ROOT / "CMakePresets.json"
ARM_TOOLCHAIN = "${sourceDir}/cmake/toolchains/aarch64-linux-gnu.cmake"


def hidden(name, **fields):
    return {"name": name, "hidden": True, **fields}


def variant_presets(matrix):
    """(name, configure preset) for every <arch>-<isa> combination."""
    archs = [("cpu", None)] + [(k, v["cc"]) for k, v in matrix["cuda_archs"].items()]
    out = []
    for arch, cc in archs:
        for isa, spec in matrix["cpu_isas"].items():
            name = f"{arch}-{isa}"
            inherits = ["base", "release-flags", f"isa-{isa}"]
            cache = {"TVOPS_VARIANT": name}
            if cc is None:
                inherits.append("cpu-only")
                if spec["host"] == "aarch64":
                    inherits.append("cross-aarch64")
                desc = f"CPU only, {isa} kernels"
            else:
                inherits.append(f"cuda-{arch}")
                desc = f"CUDA {arch} ({', '.join(matrix['cuda_archs'][arch]['examples'])}), {isa} kernels"
                if spec["host"] == "aarch64":
                    # CUDA for aarch64 is built on an aarch64 host with its own CUDA toolkit.
                    cache["TVOPS_REQUIRE_HOST"] = "aarch64"
                    desc += " (needs an aarch64 host with CUDA)"
            out.append((name, {"name": name, "displayName": name, "description": desc,
                               "inherits": inherits, "cacheVariables": cache}))
    return out


def special_presets(matrix):
    out = []
    for name, spec in matrix["special_presets"].items():
        cache = {
            "TVOPS_VARIANT": name,
            "CMAKE_BUILD_TYPE": spec["build_type"],
            "TVOPS_CPU_ISAS": spec["cpu_isas"],
            "TVOPS_CUDA_ARCHS": spec["cuda_archs"],
        }
        if spec.get("sanitize"):
            cache["TVOPS_SANITIZE"] = "address;undefined"
            cache["TVOPS_BUILD_PYTHON"] = "OFF"  # an ASan module needs an ASan Python
        if name == "dev":
            cache["TVOPS_BUILD_BENCHMARKS"] = "ON"
        out.append((name, {"name": name, "displayName": name, "description": spec["description"],
                           "inherits": ["base"], "cacheVariables": cache}))
    return out


def generate(matrix):
    configure = [
        hidden("base", generator="Ninja", binaryDir="${sourceDir}/build/${presetName}",
               installDir="${sourceDir}/build/${presetName}/install",
               cacheVariables={"CMAKE_EXPORT_COMPILE_COMMANDS": "ON", "TVOPS_BUILD_TESTS": "ON"}),
        hidden("release-flags", cacheVariables={"CMAKE_BUILD_TYPE": "Release"}),
        hidden("cpu-only", cacheVariables={"TVOPS_CUDA_ARCHS": "none"}),
        hidden("cross-aarch64", toolchainFile=ARM_TOOLCHAIN),
    ]
    configure += [hidden(f"isa-{isa}", cacheVariables={"TVOPS_CPU_ISAS": isa})
                  for isa in matrix["cpu_isas"]]
    configure += [hidden(f"cuda-{arch}", cacheVariables={"TVOPS_CUDA_ARCHS": str(spec["cc"])})
                  for arch, spec in matrix["cuda_archs"].items()]

    named = special_presets(matrix) + variant_presets(matrix)
    configure += [p for _, p in named]
    names = [n for n, _ in named]
    return {
        "version": 6,
        "cmakeMinimumRequired": {"major": 3, "minor": 25, "patch": 0},
        "vendor": {"tvops": {"generatedBy": "cmake/gen_presets.py from cmake/variants.json; do not edit"}},
        "configurePresets": configure,
        "buildPresets": [{"name": n, "configurePreset": n} for n in names],
        "testPresets": [{"name": n, "configurePreset": n,
                         "output": {"outputOnFailure": True},
                         "execution": {"noTestsAction": "error"}} for n in names],
        "packagePresets": [{"name": n, "configurePreset": n, "generators": ["TGZ", "DEB"]} for n in names],
        "workflowPresets": [{"name": n, "steps": [
            {"type": "configure", "name": n}, {"type": "build", "name": n},
            {"type": "test", "name": n}, {"type": "package", "name": n}]} for n in names],
    }


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--check", action="store_true", help="fail if CMakePresets.json is stale")
    ap.add_argument("--list", action="store_true", help="print the preset names, one a line")
    args = ap.parse_args()
    matrix = json.loads(MATRIX.read_text())
    text = json.dumps(generate(matrix), indent=2) + "\n"
    if args.list:
        for p in json.loads(text)["buildPresets"]:
            print(p["name"])
        return 0
    if args.check:
        if not OUTPUT.exists() or OUTPUT.read_text() != text:
            print("CMakePresets.json is stale: run `python3 cmake/gen_presets.py` and commit it", file=sys.stderr)
            return 1
        print(f"CMakePresets.json is up to date ({len(json.loads(text)['buildPresets'])} presets)")
        return 0
    OUTPUT.write_text(text)
    print(f"wrote {OUTPUT.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
