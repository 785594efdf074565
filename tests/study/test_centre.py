"""study.centre: the nomograms' SEs clustered by centre and the log-rank stratified by centre.

The session's synthetic study names its centre column (``centre``: A and B train, C
validates); its clustered SEs are compared with ``coxph(..., cluster = centre)`` and its
risk-group log-rank tests with ``survdiff(... + strata(centre))``, live through rpy2.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from toolkit.artifacts import read_json


@pytest.fixture(scope="module")
def centred(study_run):
    """The session's synthetic study: its clinical table has the centres (A, B train; C)."""
    study, _, _ = study_run
    return study, None


def _train(study):
    """The training rows as the models stage saw them: prepared clinical data + signatures."""
    from toolkit.config import load_study, prepare_clinical, read_clinical
    from toolkit.imaging.manifest import study_manifest

    config = load_study(study / "cohort" / "study.toml")
    manifest = study_manifest(config, study / "cohort")
    scores = pd.read_parquet(study / "results" / "tables" / "scores.parquet")
    table = read_clinical(config, study / "cohort", manifest)
    frame = prepare_clinical(config, table.loc[table.index.isin(scores.index)]).frame
    frame = frame.assign(signature=scores.loc[frame.index, "signature"])
    radiomics = pd.read_parquet(study / "results" / "tables" / "scores_radiomics.parquet")
    frame = frame.assign(signature_radiomics=radiomics.loc[frame.index, "signature_radiomics"])
    return frame[frame["set"] == "train"]


def test_clustered_se_equals_coxph_cluster(centred, r):
    from toolkit.contracts import StudyModels
    from toolkit.rbridge.cox_extensions import coxph
    from toolkit.study.nomograms import FittedModel, design_matrix, nomogram_names

    study, _ = centred
    table = pd.read_parquet(study / "results" / "tables" / "clustered_se.parquet")
    models = StudyModels.read(study / "results" / "models.json", model=FittedModel).models
    train = _train(study)
    # every nomogram: clinical, integrated, and with radiomics integrated_radiomics, combined
    assert nomogram_names(models) == sorted(set(table["model"]), key=list(models).index)
    assert len(nomogram_names(models)) == 4
    for name in nomogram_names(models):
        model = models[name]
        rows = table[table["model"] == name]
        x, names = design_matrix(train, list(model.variables), dict(model.levels))
        t, e = train["time"].to_numpy(float), train["event"].to_numpy(float)
        ref = coxph(x, t, e, cluster=train["centre"].to_numpy())
        assert list(rows["term"]) == list(names)
        np.testing.assert_allclose(rows["coef"], model.coef, rtol=0, atol=1e-12)
        np.testing.assert_allclose(rows["se_cluster"], np.sqrt(np.diag(ref["var"])), atol=1e-8)
        np.testing.assert_allclose(rows["se"], np.sqrt(np.diag(ref["naive_var"])), atol=1e-8)
        assert set(rows["n_centres"]) == {train["centre"].nunique()} == {2}


def test_risk_group_logrank_is_stratified_by_centre_as_survdiff(centred, r):
    from toolkit.contracts import StudyModels
    from toolkit.rbridge.survival import survdiff
    from toolkit.study.nomograms import FittedModel

    study, _ = centred
    groups = read_json(study / "results" / "metrics.json")["risk_groups"]
    integrated = StudyModels.read(study / "results" / "models.json", model=FittedModel)
    integrated = integrated.models["integrated"]
    train = _train(study)
    cutoff = float(np.median(integrated.linear_predictor(train)))
    assert groups["cutoff"] == pytest.approx(cutoff, abs=1e-12)
    high = integrated.linear_predictor(train) > cutoff
    t, e = train["time"].to_numpy(float), train["event"].to_numpy(float)
    ref = survdiff(t, e, np.where(high, "high", "low"), strata=train["centre"].to_numpy())
    entry = groups["train"]["stratified"]
    assert entry["by"] == "centre" and entry["n_centres"] == 2
    assert entry["chisq"] == pytest.approx(float(np.squeeze(ref["chisq"])), abs=1e-10)
    assert entry["p"] == pytest.approx(float(np.squeeze(ref["p"])), abs=1e-10)
    assert groups["validation"]["stratified"]["by"] == "centre"
    plain = survdiff(t, e, np.where(high, "high", "low"))  # the unstratified test is kept
    assert groups["train"]["chisq"] == pytest.approx(float(np.squeeze(plain["chisq"])), abs=1e-10)


def test_missing_centre_is_refused_naming_the_patients(study_copy):
    from toolkit.config import StudyInputError, load_study, prepare_clinical, read_clinical
    from toolkit.imaging.manifest import study_manifest

    clinical_path = study_copy / "cohort" / "clinical.csv"
    clinical = pd.read_csv(clinical_path, dtype={"patient": str}, encoding="utf-8")
    clinical.loc[[0, 2], "centre"] = None
    clinical.to_csv(clinical_path, index=False, encoding="utf-8")
    toml = study_copy / "cohort" / "study.toml"
    config = load_study(toml)
    table = read_clinical(
        config, study_copy / "cohort", study_manifest(config, study_copy / "cohort")
    )
    with pytest.raises(StudyInputError, match=r"centre \(study.centre\) is missing in 2 patients"):
        prepare_clinical(config, table)
