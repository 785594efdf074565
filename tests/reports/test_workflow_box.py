"""The workflow figure's preprocess box says where the crops came from ([imaging] slices)."""

from toolkit.contracts import Stage
from toolkit.report.workflow import workflow_svg

STAGES = [Stage(name="preprocess", seconds=1.0, skipped=False)]


def test_one_slice_box_names_the_largest_roi_slice():
    svg = workflow_svg(STAGES, imaging={"slices": 1, "crop_size": 224})
    assert "largest-ROI slice; 224×224 crop" in svg


def test_multi_slice_box_names_the_slices_and_pooling():
    svg = workflow_svg(STAGES, imaging={"slices": 5, "pooling": "max", "crop_size": 64})
    assert "5 slices around the largest ROI (max-pooled); 64×64 crop" in svg
    assert "largest-ROI slice;" not in svg


def test_all_slices_box():
    svg = workflow_svg(STAGES, imaging={"slices": "all", "pooling": "mean"})
    assert "every tumour slice (mean-pooled)" in svg
