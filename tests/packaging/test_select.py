"""The variant recommender and the names derived from the matrix.

Recorded machines (fixtures/): nvidia-smi outputs, the driver's information files and
/proc/cpuinfo excerpts of every GPU and CPU class the matrix covers. The Python
recommender must give the expected variant for each, the shell script the same output
byte for byte, and the library's own C++ rules (recommended_variant, the load-time check)
the same CPU ISA.
"""
import json
import os
import pathlib
import re
import shutil
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
FIXTURES = pathlib.Path(__file__).resolve().parent / "fixtures"
EXPECTED = json.loads((FIXTURES / "expected.json").read_text())
SHELL = ROOT / "packaging" / "select-variant.sh"
sys.path.insert(0, str(ROOT / "packaging"))
import tvn_source  # noqa: E402

select = tvn_source.load("select")
MATRIX = select.MATRIX


def smi(name):
    return FIXTURES / "nvidia-smi" / f"{name}.txt"


def cpuinfo(name):
    return FIXTURES / "cpuinfo" / f"{name}.txt"


def python_says(args):
    """Output and exit status of the Python recommender (in-process, its main())."""
    import contextlib
    import io

    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        rc = select.main([str(a) for a in args])
    return out.getvalue(), rc


def shell_says(args):
    p = subprocess.run(["sh", str(SHELL), *map(str, args)], capture_output=True, text=True, timeout=60)
    assert not p.stderr, p.stderr
    return p.stdout, p.returncode


def recommend(gpu="none", cpu="this-machine", driver=None):
    models = select.read_driver_models(FIXTURES / "driver" / driver) if driver else []
    return select.recommend(smi(gpu).read_text(), models, cpuinfo(cpu).read_text())


# ------------------------------------------------------------ the table ----

@pytest.mark.parametrize("gpu", sorted(EXPECTED["nvidia-smi"]))
def test_gpu_fixture_maps_to_its_target(gpu):
    assert recommend(gpu=gpu, cpu="zen4")["variant"] == f"{EXPECTED['nvidia-smi'][gpu]}-avx512bf16"


@pytest.mark.parametrize("driver", sorted(EXPECTED["driver"]))
def test_driver_model_maps_to_its_target(driver):
    rec = recommend(cpu="zen4", driver=driver)
    assert rec["variant"] == f"{EXPECTED['driver'][driver]}-avx512bf16", rec["reason"]
    assert "model name from the driver" in rec["reason"]


@pytest.mark.parametrize("cpu", sorted(EXPECTED["cpuinfo"]))
def test_cpu_fixture_maps_to_its_isa(cpu):
    isa = EXPECTED["cpuinfo"][cpu]
    rec = recommend(cpu=cpu)
    assert rec["variant"] == (f"cpu-{isa}" if isa else "none"), rec["reason"]


@pytest.mark.parametrize("machine", EXPECTED["machines"], ids=lambda m: m["what"])
def test_machine(machine):
    rec = recommend(gpu=machine["nvidia-smi"], cpu=machine["cpuinfo"])
    assert (rec["variant"], rec["wheel"]) == (machine["variant"], machine["wheel"]), rec["reason"]
    if rec["wheel"]:
        assert rec["install"] == f"pip install {machine['wheel']}"


def test_every_gpu_and_cpu_combination():
    for gpu, arch in EXPECTED["nvidia-smi"].items():
        for cpu, isa in EXPECTED["cpuinfo"].items():
            assert recommend(gpu=gpu, cpu=cpu)["variant"] == (f"{arch}-{isa}" if isa else "none"), (gpu, cpu)


def test_fixtures_cover_the_matrix():
    targets = set(EXPECTED["nvidia-smi"].values())
    assert set(MATRIX["cuda_archs"]) <= targets, f"no recorded GPU for {set(MATRIX['cuda_archs']) - targets}"
    isas = set(EXPECTED["cpuinfo"].values())
    assert set(MATRIX["cpu_isas"]) <= isas, f"no recorded CPU for {set(MATRIX['cpu_isas']) - isas}"
    assert "cpu" in targets and None in isas


def test_compute_capability_rule():
    # A cubin runs on its own major with an equal or higher minor; the newest such target wins.
    cases = {80: "sm80", 86: "sm86", 87: "sm86", 89: "sm89", 90: "sm90", 100: "sm100", 101: "sm100",
             103: "sm103", 110: "sm110", 120: "sm120", 121: "sm121", 122: "sm121", 75: None, 70: None,
             130: None}
    for cc, arch in cases.items():
        assert select.cuda_target(cc) == arch, cc
    for arch, spec in MATRIX["cuda_archs"].items():
        assert select.cuda_target(spec["cc"]) == arch


def test_example_gpus_name_their_own_target():
    for arch, spec in MATRIX["cuda_archs"].items():
        for example in spec["examples"]:
            assert select.cuda_target_from_model(f"NVIDIA {example}") == arch, example
    assert select.cuda_target_from_model("NVIDIA A10G") is None  # whole words only: not the A10
    assert select.cuda_target_from_model("NVIDIA A100-SXM4-40GB") == "sm80"


def test_cpuinfo_spelling_of_the_isa_flags():
    assert select.cpuinfo_flags_of("avx512bf16")[-2:] == ["avx512_vnni", "avx512_bf16"]
    # Alder Lake's avx_vnni is not AVX-512 VNNI.
    assert select.cpu_isa("x86_64", cpuinfo("alderlake").read_text().split()) == "avx2"


# --------------------------------------------------- shell == Python ----

def shell_cases():
    cases = [("machine " + m["what"], ["--nvidia-smi", smi(m["nvidia-smi"]), "--cpuinfo", cpuinfo(m["cpuinfo"])])
             for m in EXPECTED["machines"]]
    cases += [(f"gpu {g}", ["--nvidia-smi", smi(g), "--cpuinfo", cpuinfo("graviton2")]) for g in EXPECTED["nvidia-smi"]]
    cases += [(f"cpu {c}", ["--nvidia-smi", smi("h100"), "--cpuinfo", cpuinfo(c)]) for c in EXPECTED["cpuinfo"]]
    cases += [(f"driver {d}", ["--nvidia-smi", smi("none"), "--driver-dir", FIXTURES / "driver" / d,
                               "--cpuinfo", cpuinfo("icelake")]) for d in EXPECTED["driver"]]
    cases += [("format variant", ["--nvidia-smi", smi("b300"), "--cpuinfo", cpuinfo("grace"), "--format", "variant"]),
              ("format wheel", ["--nvidia-smi", smi("a100"), "--cpuinfo", cpuinfo("zen3"), "--format=wheel"]),
              ("format wheel, none", ["--nvidia-smi", smi("none"), "--cpuinfo", cpuinfo("cortex-a72"),
                                      "--format", "wheel"]),
              ("this machine, live", [])]
    return cases


@pytest.mark.parametrize("args", [c[1] for c in shell_cases()], ids=[c[0] for c in shell_cases()])
def test_shell_script_agrees_with_python(args):
    py = python_says(args)
    assert shell_says(args) == py
    assert py[0].strip(), "no output"


def test_shell_script_is_posix_sh():
    for shell in ("dash", "busybox"):
        tool = shutil.which(shell)
        if not tool:
            continue
        cmd = [tool, "sh"] if shell == "busybox" else [tool]
        args = ["--nvidia-smi", smi("dgx-spark"), "--cpuinfo", cpuinfo("grace")]
        p = subprocess.run([*cmd, str(SHELL), *map(str, args)], capture_output=True, text=True, timeout=60)
        assert (p.stdout, p.returncode) == python_says(args), p.stderr


# ------------------------------------------------- the library agrees ----

def native_package():
    try:
        import torchvision_native as tvn
    except ImportError:
        pytest.skip("torchvision_native is not importable here (PYTHONPATH=build/<preset>/python)")
    return tvn


def run_python(code, env):
    full = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in sys.path if p), **env)
    full.pop("TVOPS_CPU_ISA", None)
    return subprocess.run([sys.executable, "-c", code], env=full, capture_output=True, text=True, timeout=120)


def test_this_machine_agrees_with_the_library():
    tvn = native_package()
    rec = select.recommend(select.read_nvidia_smi(), select.read_driver_models(select.DRIVER_DIR),
                           pathlib.Path("/proc/cpuinfo").read_text())
    variant, reason = tvn.recommended_variant()
    # The library looks at the GPU only in a CUDA build; the CPU ISA must agree always.
    assert rec["variant"].split("-", 1)[1] == variant.split("-", 1)[1], (rec, variant, reason)
    if rec["variant"].startswith("cpu-") or tvn.build_info()["cuda_archs"]:
        assert rec["variant"] == variant, (rec, variant, reason)


@pytest.mark.parametrize("cpu", [c for c, isa in EXPECTED["cpuinfo"].items() if c != "this-machine"])
def test_library_rules_agree_on_recorded_cpus(cpu):
    """The library, with the features the recorded CPU lacks hidden (TVOPS_HIDE_CPU_FEATURES),
    picks the ISA the recommender picks from its /proc/cpuinfo."""
    tvn = native_package()
    here = tvn.cpu_features()
    arch, _, flags = select.parse_cpuinfo(cpuinfo(cpu).read_text())
    if arch != here["arch"]:
        pytest.skip(f"{cpu} is an {arch} CPU, this machine {here['arch']}")
    spelling = MATRIX["cpuinfo_spelling"]
    members = [k for k, v in here.items() if isinstance(v, bool)]
    missing = [m for m in members if spelling.get(m, m) not in flags and here[m]]
    extra = [m for m in members if spelling.get(m, m) in flags and not here[m]]
    if extra:
        pytest.skip(f"this CPU lacks {extra}, which {cpu} has")
    p = run_python("import sys\ntry:\n    import torchvision_native as t\nexcept ImportError as e:\n"
                   "    print('ImportError:', e); sys.exit(3)\nprint(t.recommended_variant()[0])",
                   {"TVOPS_HIDE_CPU_FEATURES": " ".join(missing)})
    isa = EXPECTED["cpuinfo"][cpu]
    if isa is None:
        assert p.returncode == 3 and "cannot run this build" in p.stdout and "No tvops variant runs here" in p.stdout, \
            p.stdout + p.stderr
    else:
        assert p.returncode == 0, p.stdout + p.stderr
        assert p.stdout.strip().split("-", 1)[1] == isa


def test_hidden_features_give_the_clear_import_error():
    native_package()
    p = run_python("import torchvision_native", {"TVOPS_HIDE_CPU_FEATURES": "avx2 asimddp"})
    assert p.returncode == 1, (p.returncode, p.stderr)  # a Python exception, not a signal
    assert re.search(r"ImportError: tvops: this CPU \(.*\) cannot run this build: variant \S+ needs the ISA",
                     p.stderr), p.stderr


# --------------------------------------------------------------- names ----

def test_wheel_names_round_trip():
    names = {}
    for variant in select.variants():
        wheel = select.wheel_name(variant)
        assert re.fullmatch(r"[A-Za-z0-9]([A-Za-z0-9._-]*[A-Za-z0-9])?", wheel), wheel  # PEP 508 name
        arch, isa = variant.split("-", 1)
        assert wheel.startswith("torchvision-native-") and wheel.endswith(isa)
        assert (f"-cuda{MATRIX['cuda']['major']}-{arch}-" in wheel) == (arch != "cpu"), wheel
        for spelling in (wheel, wheel.replace("-", "_").replace(".", "_"), wheel.upper()):
            assert select.variant_from_wheel(spelling) == variant, spelling
        names[select.normalize(wheel)] = variant
        assert select.package_name(variant) == f"tvops-{variant}"
    assert len(names) == len(select.variants()) == (len(MATRIX["cuda_archs"]) + 1) * len(MATRIX["cpu_isas"])
    assert select.variant_from_wheel("torchvision-native") is None
    assert select.variant_from_wheel("torchvision-native-cuda12-sm90-avx2") is None
    with pytest.raises(ValueError):
        select.wheel_name("sm75-avx2")


def test_variants_are_the_presets():
    presets = json.loads((ROOT / "CMakePresets.json").read_text())
    names = {p["name"] for p in presets["configurePresets"] if not p.get("hidden")}
    assert set(select.variants()) <= names
    assert names - set(select.variants()) == set(MATRIX["special_presets"])


# ----------------------------------------------------------- generated ----

def test_generated_files_are_fresh():
    for tool in ("cmake/gen_presets.py", "packaging/gen_packaging.py"):
        p = subprocess.run([sys.executable, str(ROOT / tool), "--check"], capture_output=True, text=True)
        assert p.returncode == 0, p.stdout + p.stderr


def test_one_recipe_per_variant():
    recipes = sorted((ROOT / "packaging" / "flox" / ".flox" / "pkgs").glob("*.nix"))
    assert [r.stem for r in recipes] == sorted(select.package_name(v, "recipe") for v in select.variants())
    for variant in select.variants():
        text = (ROOT / "packaging" / "flox" / ".flox" / "pkgs" / f"tvops-{variant}.nix").read_text()
        assert f'variant = "{variant}";' in text and "callPackage ../../../nix/tvops.nix" in text
        cuda_set = f"cudaPackages = cudaPackages_{MATRIX['cuda']['major']};"
        assert (cuda_set in text) == (not variant.startswith("cpu-")), text
        host = MATRIX["cpu_isas"][variant.split("-", 1)[1]]["host"]
        assert f'platforms = [ "{host}-linux" ];' in text
    generic = (ROOT / "packaging" / "nix" / "tvops.nix").read_text()
    assert 'pname = "tvops-${variant}";' in generic
    assert "cmake --preset ${variant} " in generic and "build_wheel.py ${variant} " in generic
    default = (ROOT / "packaging" / "nix" / "default.nix").read_text()
    assert all(f'"{v}" = pkgs.callPackage' in default for v in select.variants())


def test_recipes_parse():
    tool = shutil.which("nix-instantiate")
    assert tool, "nix-instantiate is missing: Debian's nix-bin (packaging/debian-packages.txt)"
    files = [*(ROOT / "packaging" / "flox" / ".flox" / "pkgs").glob("*.nix"), *(ROOT / "packaging" / "nix").glob("*.nix")]
    # One call parses them all; build-users-group is unset so that no Nix daemon set-up is needed.
    p = subprocess.run([tool, "--option", "build-users-group", "", "--parse", *map(str, files)],
                       capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr
    assert p.stdout.count("variant = \"") == len(select.variants())


def test_recipes_evaluate():
    """Every recipe, evaluated against a stand-in of nixpkgs (eval-recipes.nix), is a derivation
    named after its variant that builds that preset, with CUDA exactly for the CUDA variants."""
    tool = shutil.which("nix-instantiate")
    assert tool, "nix-instantiate is missing: Debian's nix-bin (packaging/debian-packages.txt)"
    p = subprocess.run([tool, "--option", "build-users-group", "", "--eval", "--strict", "--json",
                        "--arg", "root", str(ROOT), str(FIXTURES.parent / "eval-recipes.nix")],
                       capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr
    got = json.loads(p.stdout)
    assert sorted(got) == sorted(select.variants())
    for variant, d in got.items():
        arch, isa = variant.split("-", 1)
        assert d == {"pname": select.package_name(variant, "recipe"), "preset": [variant], "cuda": arch != "cpu",
                     "platforms": [f"{MATRIX['cpu_isas'][isa]['host']}-linux"]}, (variant, d)
