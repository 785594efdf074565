"""benchmarks/gpu_extract.py --smoke runs on a CPU and writes its JSON report.

torchvision does not import here, so the script must say so and still measure
sigkit's configurations and the bfloat16-vs-float32 check.
"""

from __future__ import annotations

import json
from pathlib import Path

from deep_helpers import smoke_run


def _smoke(tmp_path: Path, out: Path, *flags: str):
    return smoke_run("gpu_extract.py", tmp_path, out, *flags)


def test_gpu_benchmark_script_smoke_run_writes_a_complete_report(tmp_path):
    done = _smoke(tmp_path, tmp_path)
    report = json.loads((tmp_path / "gpu_extract.json").read_text())
    assert report["smoke"] is True and report["gflop_per_image"] > 5.6
    assert report["checks"]["bf16_vs_f32_pass"] is True
    assert report["checks"]["bf16_vs_f32_cosine_min"] >= 0.999
    rows = {(r["impl"], r["dtype"]): r for r in report["rows"]}
    for dtype in ("float32", "bfloat16"):
        measured = rows[("sigkit-flax (jit)", dtype)]
        assert measured["error"] is None and measured["images_per_s"] > 0
    assert rows[("sigkit extract() host->dev", "bfloat16")]["error"] is None
    try:
        import torchvision  # noqa: F401
    except Exception:
        assert any("torchvision not usable" in note for note in report["notes"])
        assert "torchvision not usable" in done.stdout
    else:  # pragma: no cover - where torchvision imports, its rows are there too
        assert ("torchvision eager (CL)", "float32") in rows
    assert "images/s" in done.stdout  # the printed table


def test_versus_compile_smoke_run_measures_only_the_pairs(tmp_path):
    _smoke(tmp_path, tmp_path / "pairs.json", "--versus-compile")
    report = json.loads((tmp_path / "pairs.json").read_text())
    impls = [(r["impl"], r["dtype"]) for r in report["rows"]]
    assert impls[0] == ("sigkit-flax (jit)", "bfloat16")  # bfloat16 first
    assert ("sigkit-flax (jit)", "float32") in impls
    assert not any(i.startswith(("torchvision eager", "sigkit extract")) for i, _ in impls)
    assert any("--versus-compile" in note for note in report["notes"])
