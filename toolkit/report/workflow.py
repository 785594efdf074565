"""Figure 1: the workflow, drawn as inline SVG from the stages this run executed.

The boxes are metrics.json's ``stages`` in order, each with what it does, its
wall time and whether it was skipped because its outputs were up to date.
"""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence
from typing import Any

from toolkit.contracts import Stage

DESCRIPTIONS = {
    "synth": "Synthetic cohort: CT phantoms, masks, outcomes",
    "preprocess": "Register arterial→portal; largest-ROI slice; 224×224 crop; z-score",
    "radiomics": "PyRadiomics (IBSI) features, 2-D and 3-D, per phase and reader",
    "extract": "DenseNet-121 features, 1024 per phase and reader",
    "icc": "Reproducibility filter: ICC across readers",
    "signature": "ICC filter → mRMR ranking → elastic-net Cox with k-fold CV",
    "signature_radiomics": "The same ICC filter → mRMR → elastic-net Cox on the radiomics",
    "radiomics_truth": "Radiomics signature vs the simulated tumour (synthetic cohorts)",
    "nomograms": "Univariate Cox screen → stepwise AIC → nomograms",
    "models": "Univariate Cox screen → stepwise AIC → clinical and integrated nomograms",
    "report": "This report",
    "validate": "C-index, calibration, risk groups, td-AUC, decision curves",
    "validation": "C-index, calibration, risk groups, td-AUC, decision curves",
    "figures": "Figures and tables",
    "bundle": "Locked model bundle (model/): what sigkit apply scores a new cohort with",
    "internal_validation": "Whole-procedure bootstrap: optimism, selection stability",
    "r_check": "Every statistic recomputed in R",
    "cam": "Class activation maps of the signature (heat maps)",
}


def preprocess_description(imaging: Mapping[str, Any]) -> str:
    """The preprocess box for this run's ``[imaging] slices`` and ``crop_size``."""
    slices = imaging.get("slices", 1)
    crop = imaging.get("crop_size", 224)
    if slices == 1:
        where = "largest-ROI slice"
    elif slices == "all":
        where = f"every tumour slice ({imaging.get('pooling', 'mean')}-pooled)"
    else:
        where = f"{slices} slices around the largest ROI ({imaging.get('pooling', 'mean')}-pooled)"
    return f"Register arterial→portal; {where}; {crop}×{crop} crop; z-score"


_BOX_W, _BOX_H, _GAP, _MARGIN = 460, 58, 22, 10


def _box(index: int, name: str, description: str, stage: Stage | None = None) -> str:
    """Box ``index``: a stage's name, what it does and its time (none for the cohort box)."""
    y = _MARGIN + index * (_BOX_H + _GAP)
    skipped = stage is not None and stage.skipped
    status = (
        "skipped: up to date"
        if skipped
        else (f"{stage.seconds:.1f} s" if stage is not None else "")
    )
    fill = "#eef2f7" if skipped else "#dbe9f6"
    parts = [
        f'<rect x="{_MARGIN}" y="{y}" width="{_BOX_W}" height="{_BOX_H}" rx="6" '
        f'fill="{fill}" stroke="#2c5d8a" stroke-width="1.2"/>',
        f'<text x="{_MARGIN + 10}" y="{y + 20}" font-weight="bold">{index + 1}. '
        f"{html.escape(name)}</text>",
        f'<text x="{_MARGIN + _BOX_W - 10}" y="{y + 20}" text-anchor="end" '
        f'fill="#555">{html.escape(status)}</text>',
        f'<text x="{_MARGIN + 10}" y="{y + 42}" font-size="11.5" fill="#333">'
        f"{html.escape(description)}</text>",
    ]
    return "".join(parts)


def _arrow(index: int) -> str:
    x = _MARGIN + _BOX_W / 2
    y0 = _MARGIN + index * (_BOX_H + _GAP) + _BOX_H
    y1 = y0 + _GAP - 2
    return (
        f'<line x1="{x}" y1="{y0}" x2="{x}" y2="{y1 - 5}" stroke="#2c5d8a" stroke-width="1.5"/>'
        f'<polygon points="{x - 5},{y1 - 6} {x + 5},{y1 - 6} {x},{y1}" fill="#2c5d8a"/>'
    )


def workflow_svg(
    stages: Sequence[Stage] | None,
    cohort: str = "",
    imaging: Mapping[str, Any] | None = None,
) -> str:
    """The stages as a vertical flow chart (SVG markup, no external resources).

    `cohort`, when given, describes the input in a first box (no time);
    `imaging`, the run's ``[imaging]`` settings, words the preprocess box.
    """
    if not stages:
        return '<p class="missing">metrics.json records no stages.</p>'
    described = dict(DESCRIPTIONS)
    if imaging is not None:
        described["preprocess"] = preprocess_description(imaging)
    boxes = [(s.name, described.get(s.name, ""), s) for s in stages]
    if cohort:
        boxes.insert(0, ("cohort", cohort, None))
    height = 2 * _MARGIN + len(boxes) * _BOX_H + (len(boxes) - 1) * _GAP
    width = _BOX_W + 2 * _MARGIN
    body = [_box(i, *box) for i, box in enumerate(boxes)]
    body += [_arrow(i) for i in range(len(boxes) - 1)]
    return (
        f'<svg class="workflow" width="{width}" '
        f'height="{height}" viewBox="0 0 {width} {height}" font-family="sans-serif" '
        f'font-size="13" role="img" aria-label="workflow">{"".join(body)}</svg>'
    )
