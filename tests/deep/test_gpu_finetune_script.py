"""benchmarks/gpu_finetune.py --smoke runs on a CPU and writes its JSON report."""

from __future__ import annotations

import json

from deep_helpers import smoke_run


def test_gpu_finetune_script_smoke_run_writes_a_complete_report(tmp_path):
    done = smoke_run("gpu_finetune.py", tmp_path, tmp_path)
    report = json.loads((tmp_path / "gpu_finetune.json").read_text())
    assert report["smoke"] is True and report["study_patients"] == 120
    assert [r["dtype"] for r in report["rows"]] == ["bfloat16", "float32"]
    for row in report["rows"]:
        assert row["error"] is None, row
        assert row["images_per_epoch"] == 16 and row["images_per_s"] > 0
        assert row["epoch_s"] > 0 and row["peak_memory_gib"] > 0
        assert len(row["losses"]) == 2 and all(abs(v) < 1e3 for v in row["losses"])
    assert "images/s" in done.stdout
