"""Registration accuracy on the 201-patient synthetic cohort (not an R comparison).

The cohort's portal phase was moved by a known rigid transform per patient;
`sigkit preprocess` must recover it to within 1 mm (at the tumour) and 1 degree
for at least 95 % of patients. The rows are compare()d against the ideal value
0 (errors) or 1 (share of patients within both limits) with the requirement as
the tolerance; `reference` names the ground truth, not an R function.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np

from validation import check, compare

_REF = "ground truth: synthetic rigid motion (toolkit.synth)"
_DATASET = "synthetic-201 (seed 0)"


@check("registration", fast=False)
def registration_on_synthetic_cohort():
    from toolkit.config import load_study
    from toolkit.imaging.preprocess import PreprocessSettings, preprocess_cohort
    from toolkit.synth import generate_cohort
    from toolkit.synth.truth import registration_errors

    with tempfile.TemporaryDirectory(prefix="sigkit-registration-") as tmp:
        cohort = Path(tmp) / "cohort"
        generate_cohort(cohort, 201, seed=0)
        summary = preprocess_cohort(
            cohort / "manifest.csv",
            Path(tmp) / "crops",
            workers=2,
            progress=False,
            settings=PreprocessSettings.from_config(load_study(cohort / "study.toml"), qc=False),
        )
        errors = registration_errors(cohort, Path(tmp) / "crops")
    shift = errors["translation_error_mm"].to_numpy()
    angle = errors["rotation_error_deg"].to_numpy()
    within = float(np.mean((shift < 1.0) & (angle < 1.0))) if len(errors) else 0.0
    return [
        compare("patients preprocessed", _DATASET, summary.n_ok, 201, 0, reference=_REF),
        compare(
            "registration translation error mm (95th pct)",
            _DATASET,
            np.percentile(shift, 95),
            0.0,
            1.0,
            reference=_REF,
        ),
        compare(
            "registration rotation error deg (95th pct)",
            _DATASET,
            np.percentile(angle, 95),
            0.0,
            1.0,
            reference=_REF,
        ),
        compare(
            "share of patients within 1 mm and 1 degree",
            _DATASET,
            within,
            1.0,
            0.05,
            reference=_REF,
        ),
    ]
