"""Compare what the pipeline recovered with a synthetic cohort's ground truth.

``registration_errors`` reads the true portal-phase motion from
``ground_truth/truth.csv`` and the fitted Euler3D transform from each
``crops/<patient>.npz`` (parameters and centre of rotation), and measures the
difference of the two maps (:func:`toolkit.imaging.register.transform_error`):
the translation error at the main tumour's centre (mm) and the angle of the
residual rotation (degrees).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pandas as pd

MOTION = ("motion_rx", "motion_ry", "motion_rz", "motion_tx", "motion_ty", "motion_tz")


def registration_errors(
    cohort: str | os.PathLike[str], crops: str | os.PathLike[str]
) -> pd.DataFrame:
    """Per patient: translation error (mm), rotation error (deg), and the unregistered shift.

    Patients without a crop file are left out (they are in crops/failures.csv).
    """
    from toolkit.imaging.register import euler_transform, transform_error

    truth = pd.read_csv(Path(cohort) / "ground_truth" / "truth.csv")
    rows = []
    for row in truth.itertuples(index=False):
        path = Path(crops) / f"{row.patient}.npz"
        if not path.is_file():
            continue
        with np.load(path, allow_pickle=False) as npz:
            parameters = np.asarray(npz["registration"])
            centre = json.loads(str(npz["metadata"]))["registration"]["centre"]
        true = euler_transform([getattr(row, m) for m in MOTION])
        at = np.array([row.tumour_centre_x, row.tumour_centre_y, row.tumour_centre_z])
        shift, angle = transform_error(euler_transform(parameters, centre), true, at)
        before, _ = transform_error(euler_transform(np.zeros(6)), true, at)
        rows.append(
            {
                "patient": row.patient,
                "translation_error_mm": shift,
                "rotation_error_deg": angle,
                "unregistered_shift_mm": before,
            }
        )
    return pd.DataFrame(rows)
