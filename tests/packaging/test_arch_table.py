"""kernels/cuda/arch_tuning.cuh against the variant matrix (cmake/variants.json): a
row for every SM target the matrix builds, with that target's shared memory, and
staging tiles that fit it."""
import json
import pathlib
import re

ROOT = pathlib.Path(__file__).resolve().parents[2]


def table_rows():
    text = (ROOT / "kernels/cuda/arch_tuning.cuh").read_text()
    body = text[text.index("kArchTable[] = {"):text.index("};", text.index("kArchTable[] = {"))]
    rows = []
    for m in re.finditer(r"\{(\d+), (\d+) \* kKiB, (\d+) \* kKiB, (\d+), (\d+), (\d+) \* kKiB,", body):
        sm, block, per_sm, elementwise, roi, stage = map(int, m.groups())
        rows.append(dict(sm=sm, block_kib=block, sm_kib=per_sm, roi_threads=roi, stage_kib=stage))
    return rows


def test_every_matrix_target_has_its_row_with_its_shared_memory():
    matrix = json.loads((ROOT / "cmake/variants.json").read_text())
    gpus = {int(v["cc"]): v for v in matrix["cuda_archs"].values()}
    rows = {r["sm"]: r for r in table_rows()}
    assert set(rows) == set(gpus), f"table rows {sorted(rows)} vs matrix targets {sorted(gpus)}"
    for cc, gpu in gpus.items():
        assert rows[cc]["sm_kib"] == gpu["smem_kb"], f"sm{cc}: shared memory per SM differs from variants.json"
        assert rows[cc]["block_kib"] < rows[cc]["sm_kib"]
        assert rows[cc]["stage_kib"] <= 48 and rows[cc]["roi_threads"] % 32 == 0
