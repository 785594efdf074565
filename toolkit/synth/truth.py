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


TUMOUR_TRUTH = (
    "tumour_volume_ml",
    "size_cm_drawn",
    "necrosis",
    "heterogeneity_hu",
    "enhancement_hu",
    "washout_hu",
)
"""The simulated tumour quantities of ``ground_truth/truth.csv`` that image features can see."""

RECOVERY_COLUMNS = ["truth", "kind", "feature", "rho", "p", "n"]


def radiomics_recovery(
    cohort: str | os.PathLike[str],
    features: pd.DataFrame,
    score: pd.Series,
    signature_features: list[str],
) -> pd.DataFrame:
    """What the radiomics signature recovers of the simulated tumour: Spearman's rho.

    rho is Pearson's correlation of the ranks (ties get their average rank), its P the
    two-sided t approximation with n - 2 degrees of freedom (``scipy.stats.spearmanr``;
    R's ``cor.test(method = "spearman", exact = FALSE)``). For each quantity of
    :data:`TUMOUR_TRUTH`, on the patients of ``features`` (one row per patient: the
    primary reader's), rows of three kinds: ``signature`` (the score ``score``, indexed by
    patient), ``signature feature`` (each of ``signature_features``) and ``best feature``
    (the feature of ``features`` with the largest |rho|: what the features could recover at
    all, a reference, not a test). The simulation is read as it is; nothing is tuned to it.
    """
    from scipy.stats import spearmanr

    truth = pd.read_csv(Path(cohort) / "ground_truth" / "truth.csv", dtype={"patient": str})
    truth = truth.set_index("patient").loc[features.index]
    values = features.astype(float)
    rows = []
    for quantity in TUMOUR_TRUTH:
        target = truth[quantity].astype(float)
        every = values.corrwith(target, method="spearman").dropna()
        best = str(every.abs().idxmax()) if len(every) else None
        picks = [("signature", "signature_radiomics", score.loc[features.index])]
        picks += [("signature feature", name, values[name]) for name in signature_features]
        picks += [("best feature", best, values[best])] if best is not None else []
        for kind, name, series in picks:
            rho, p = spearmanr(series.to_numpy(float), target.to_numpy(float))
            rows.append([quantity, kind, name, float(rho), float(p), len(target)])
    return pd.DataFrame(rows, columns=RECOVERY_COLUMNS)
