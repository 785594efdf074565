"""The study report: every table and figure present, numbers equal to metrics.json, offline."""

from __future__ import annotations

import json
import re

import pytest

from toolkit.report import formatting as fmt
from toolkit.study.validate import MODELS

TABLES = (
    "tbl-baseline",
    "tbl-riskgroups",
    "tbl-multivariable",
    "tbl-cindex",
    "tbl-models",
    "tbl-calibration",
    "tbl-tdauc",
    "tbl-accuracy",
    "tbl-calslope",
    "tbl-optimism",
    "tbl-rcheck",
    "tbl-internal",
    "tbl-decision",
    "suptbl-exclusions",
    "suptbl-signature",
    "suptbl-radiomics",
    "suptbl-radiomics-truth",
    "suptbl-univariate",
    "suptbl-tripod",
    "suptbl-ph",
    "suptbl-clustered",
)
FIGURES = (
    "fig-workflow",
    "fig-km",
    "fig-cam",
    "fig-nomogram",
    "fig-tdauc",
    "fig-decision",
    "fig-best-nomogram",
    "fig-stability",
    "supfig-forest",
    "supfig-schoenfeld",
)


@pytest.fixture(scope="module")
def page(study_report) -> str:
    return study_report.read_text()


@pytest.fixture(scope="module")
def metrics(study_dir) -> dict:
    return json.loads((study_dir / "results" / "metrics.json").read_text())


@pytest.mark.parametrize("ident", TABLES + FIGURES + ("nomogram-calculator", "sec-methods"))
def test_every_table_and_figure_has_its_id(page, ident):
    assert f'id="{ident}"' in page


def test_no_artifact_is_reported_missing(page):
    assert 'class="missing"' not in page, re.findall(r'class="missing">(.*?)</p>', page)


def test_figures_are_inline_images(page, study_dir, text_of):
    figures = re.findall(r'<figure id="(?:fig|supfig)-[^"]+".*?</figure>', page, re.S)
    assert len(figures) == len(FIGURES)
    for figure in figures:
        assert "data:image/png;base64," in figure or "<svg" in figure
    stages = json.loads((study_dir / "results" / "metrics.json").read_text())["stages"]
    workflow = text_of(page, "fig-workflow")
    for stage in stages:
        assert stage["name"] in workflow


def test_no_external_url_anywhere(page):
    assert not re.search(r"https?://", page)
    assert not re.search(r"<script[^>]+src=", page)
    assert not re.search(r"<link[^>]+href=", page)
    assert not re.search(r"@import", page)
    for target in re.findall(r"url\(\s*['\"]?([^'\")]+)", page):
        assert target.startswith("data:"), target
    for target in re.findall(r'(?:src|href)="([^"]*)"', page):
        assert target.startswith(("data:", "#")), target


def test_cindex_table_equals_metrics(page, metrics, text_of):
    table = text_of(page, "tbl-cindex")
    for per_set in metrics["cindex"].values():
        for entry in per_set.values():
            expected = fmt.with_ci(entry["c"], entry["lower"], entry["upper"])
            assert expected in table
    for per_set in metrics["comparisons"].values():
        for test in per_set.values():
            if test and test.get("diff") is not None:
                assert f"{test['diff']:+.3f}" in table
                assert fmt.pvalue(test["p"]) in table


def test_calibration_and_auc_tables_equal_metrics(page, metrics, text_of):
    calibration = text_of(page, "tbl-calibration")
    for per_set in metrics["calibration"].values():
        for per_model in per_set.values():
            for entry in per_model.values():
                assert fmt.number(entry["rmse"]) in calibration
                assert fmt.number(entry["ici"]) in calibration
    auc = text_of(page, "tbl-tdauc")
    for per_set in metrics["td_auc"].values():
        for per_model in per_set.values():
            for value in per_model.values():
                assert fmt.number(value) in auc


def test_accuracy_and_calibration_slope_tables_equal_metrics(page, metrics, text_of):
    accuracy = text_of(page, "tbl-accuracy")
    slopes = text_of(page, "tbl-calslope")
    for per_set in metrics["accuracy"].values():
        for model, entry in per_set.items():
            if model == "beyond_follow_up":
                continue
            for b in entry["brier"].values():
                assert fmt.with_ci(b["brier"], b["lower"], b["upper"]) in accuracy
                assert f"{fmt.number(b['null_brier'])} {fmt.number(b['ipa'])}" in accuracy
            for a in entry["auc"].values():
                assert fmt.with_ci(a["auc"], a["lower"], a["upper"]) in accuracy
            s = entry["calibration_slope"]
            assert fmt.with_ci(s["slope"], s["lower"], s["upper"], digits=2) in slopes
            for large in entry["calibration_in_the_large"].values():
                assert fmt.with_ci(large["oe"], large["lower"], large["upper"], digits=2) in slopes


def test_optimism_table_equals_metrics(page, metrics, text_of):
    table = text_of(page, "tbl-optimism")
    block = metrics["fixed_model_validation"]
    for model in ("clinical", "integrated"):
        for values in block[model]["indexes"].values():
            cells = [values[k] for k in ("index.orig", "training", "test", "optimism")]
            assert " ".join(fmt.number(v) for v in cells) in table


def test_ph_table_equals_the_run_and_the_narrative_names_violations(page, study_dir, text_of):
    import pandas as pd
    from bs4 import BeautifulSoup

    frame = pd.read_parquet(study_dir / "results" / "tables" / "ph_test.parquet")
    table = text_of(page, "suptbl-ph")
    assert set(frame["model"]) == {"clinical", "integrated", "integrated_radiomics", "combined"}
    for row in frame.itertuples():
        assert f"{fmt.number(row.chisq, 2)} {int(row.df)} {fmt.pvalue(row.p)}" in table
    text = BeautifulSoup(page, "html.parser").get_text(" ", strip=True)
    assert "The proportional-hazards assumption was tested" in text
    violated = frame[(frame["term"] != "GLOBAL") & (frame["p"] < 0.05)]
    assert ("The assumption is in doubt" in text) == (not violated.empty)


def test_signature_hazard_ratio_per_sd_beside_per_unit(page, study_dir, text_of):
    import pandas as pd

    frame = pd.read_parquet(study_dir / "results" / "tables" / "multivariable_integrated.parquet")
    scores = pd.read_parquet(study_dir / "results" / "tables" / "scores.parquet")
    sd = scores.loc[scores["set"] == "train", "signature"].std(ddof=1)
    row = frame[frame["term"] == "signature"]
    assert not row.empty, "the session's synthetic study keeps the signature (integrated model)"
    hr, lower, upper, p = (float(row[k].iloc[0]) for k in ("hr", "lower", "upper", "p"))
    per_sd = fmt.with_ci(hr**sd, lower**sd, upper**sd, digits=2, hazard_ratio=True)
    table = text_of(page, "tbl-multivariable")
    assert f"per SD ({fmt.number(sd)}) " in table
    assert f"{per_sd} {fmt.pvalue(p)}" in table


def section_html(page: str) -> str:
    return page.split('id="suptbl-tripod"')[1].split("</table>")[0]


def test_tripod_checklist_has_every_item_and_links_only_existing_sections(page, text_of):
    import re

    table = text_of(page, "suptbl-tripod")
    numbers = re.findall(r"<td>(\d+[a-g]?)</td><td>", page.split('id="suptbl-tripod"')[1])
    assert len(numbers) == 52
    assert numbers[0] == "1" and numbers[-1] == "27c"
    assert "not reported" in table
    assert "&amp;#x27;" not in section_html(page) and "&amp;amp;" not in section_html(page)
    section = page.split('id="suptbl-tripod"')[1].split("</table>")[0]
    for target in re.findall(r'href="#([^"]+)"', section):
        assert f'id="{target}"' in page, target


def test_risk_groups_equal_metrics(page, metrics, text_of):
    table = text_of(page, "tbl-riskgroups")
    for name in ("train", "validation"):
        entry = metrics["risk_groups"][name]
        assert f"{entry['n_low']} {entry['n_high']} {entry['chisq']:.2f}" in table
        assert fmt.pvalue(entry["p"]) in table


def test_internal_validation_table_equals_its_parquet(page, study_dir, text_of):
    import pandas as pd

    summary = pd.read_parquet(study_dir / "results" / "tables" / "internal_validation.parquet")
    table = text_of(page, "tbl-internal")
    for r in summary.itertuples(index=False):
        assert f"{fmt.number(r.apparent)} {fmt.number(r.optimism)} {fmt.number(r.corrected)}" in (
            table
        )
    record = json.loads((study_dir / "results" / "internal_validation.json").read_text())
    assert f"{record['n_used']} resamples were used" in page
    assert f"In each of {record['B']} bootstrap resamples of the training set" in page
    tripod = page.split('id="suptbl-tripod"')[1].split("</table>")[0]
    assert tripod.count('href="#sec-internal"') == 2  # items 12c and 23a


def test_models_table_and_best_nomogram_equal_the_run(page, study_dir, text_of):
    import pandas as pd

    from toolkit.report.study import MODEL_LABELS

    compared = pd.read_parquet(study_dir / "results" / "tables" / "models_compared.parquet")
    table = text_of(page, "tbl-models")
    for r in compared.itertuples():
        assert MODEL_LABELS[r.model] in table
        assert fmt.number(r.aic, 1) in table
        for s in ("train", "validation"):
            c = (getattr(r, f"c_{s}"), getattr(r, f"lower_{s}"), getattr(r, f"upper_{s}"))
            assert fmt.with_ci(*c) in table
    best = compared.loc[compared["best_aic"], "model"].iloc[0]
    assert f"{MODEL_LABELS[best]} (lowest AIC)" in table
    figure = text_of(page, "fig-best-nomogram")
    assert MODEL_LABELS[best] in figure
    from bs4 import BeautifulSoup

    text = BeautifulSoup(page, "html.parser").get_text(" ", strip=True)
    assert f"the {MODEL_LABELS[best].lower()} has the lowest training AIC" in text
    assert "Radiomics signature against clinical nomogram: ΔC-index" in text
    assert "Combined nomogram against integrated nomogram: ΔC-index" in text
    assert "DL signature against radiomics signature: ΔC-index" in text


def test_decision_table_equals_its_parquet(page, study_dir, text_of):
    import pandas as pd

    summary = pd.read_parquet(study_dir / "results" / "tables" / "decision_summary.parquet")
    table = text_of(page, "tbl-decision")
    for (name, horizon, threshold), at in summary.groupby(["set", "horizon", "threshold"]):
        by_model = at.set_index("model")
        integrated, gain = by_model.loc["integrated"], by_model.loc["integrated - clinical"]
        models = [m for m in MODELS if m in by_model.index]
        assert len(models) == 6  # the session study runs radiomics: every model
        cells = [
            f"{100 * threshold:g}%",
            fmt.number(integrated["treat_all"]),
            *(fmt.number(by_model.loc[m, "net_benefit"]) for m in models),
            fmt.number(integrated["interventions_avoided"], 1),
            fmt.with_ci(gain["net_benefit"], gain["lower"], gain["upper"]),
        ]
        assert " ".join(cells) in table, (name, horizon, threshold)
    from bs4 import BeautifulSoup

    text = BeautifulSoup(page, "html.parser").get_text(" ", strip=True)
    assert "net interventions avoided per 100 patients" in text
    assert "threshold probabilities of 10%, 20%, 30%, 40%, 50%" in text


def test_radiomics_tables_equal_their_parquet(page, study_dir, text_of):
    import pandas as pd

    tables = study_dir / "results" / "tables"
    weights = pd.read_parquet(tables / "signature_features_radiomics.parquet")
    shown = text_of(page, "suptbl-radiomics")
    assert len(weights) > 0
    for r in weights.itertuples(index=False):
        assert f"{r.feature} {fmt.number(r.coefficient, 4)} {fmt.number(r.icc, 3)}" in shown
    truth = pd.read_parquet(tables / "radiomics_truth.parquet")
    shown = text_of(page, "suptbl-radiomics-truth")
    for r in truth.itertuples(index=False):
        assert f"{r.truth} {r.kind} {r.feature} {fmt.number(r.rho)}" in shown


def test_r_check_table_lists_every_check(page, study_dir, text_of):
    checks = json.loads((study_dir / "results" / "r_check.json").read_text())["checks"]
    table = text_of(page, "tbl-rcheck")
    for check in checks:
        assert check["name"] in table
        if check["r"] is not None:
            assert f"{check['r']:.6g}" in table
    assert table.count("pass") == sum(c["passed"] for c in checks)


def test_multivariable_table_formats_hazard_ratios(page, study_dir, text_of):
    import pandas as pd

    table = text_of(page, "tbl-multivariable")
    frame = pd.read_parquet(study_dir / "results" / "tables" / "multivariable_integrated.parquet")
    for row in frame.itertuples():
        expected = fmt.with_ci(row.hr, row.lower, row.upper, digits=2, hazard_ratio=True)
        assert f"{expected} {fmt.pvalue(row.p)}" in table
    assert re.search(r"\d\.\d\d \(\d+\.\d\d–\d+\.\d\d\)", table)


def test_methods_say_synthetic_and_random_weights(page, metrics, text_of):
    from bs4 import BeautifulSoup

    text = BeautifulSoup(page, "html.parser").get_text(" ", strip=True)
    assert metrics["provenance"]["synthetic"] is True
    assert "This cohort is synthetic" in text
    assert "synthetic" in text_of(page, "provenance-warning")
    if metrics["provenance"].get("weights") == "random":
        assert "The network's weights were random" in text
        assert "random" in text_of(page, "provenance-warning")


def test_footer_names_the_renderer(page):
    import nbclient

    assert f"Rendered by sigkit Jupyter renderer (nbclient {nbclient.__version__})" in page


def test_a_partial_run_renders_and_names_what_is_missing(study_dir, tmp_path):
    import shutil

    from toolkit.report import render_study_report

    partial = tmp_path / "partial"
    (partial / "results").mkdir(parents=True)
    shutil.copy(study_dir / "results" / "metrics.json", partial / "results" / "metrics.json")
    path = render_study_report(partial, renderer="jupyter")
    assert path == (partial / "report" / "study.html").resolve()
    page = path.read_text()
    for name in ("tables/baseline.parquet", "figures/km_risk_train.png", "r_check.json"):
        assert f"<code>results/{name}</code>" in page
    assert 'id="nomogram-calculator"' not in page
    assert "Not produced by this run: results/nomogram_*.json." in page


def test_missing_results_are_refused(tmp_path):
    from toolkit.report import RenderError, render_study_report

    with pytest.raises(RenderError, match=r"metrics\.json not found: run `sigkit study run"):
        render_study_report(tmp_path)


def test_signature_table_equals_signature_json(page, study_dir, text_of):
    signature = json.loads((study_dir / "results" / "signature.json").read_text())
    table = text_of(page, "suptbl-signature")
    for feature, weight in zip(signature["features"], signature["coefficients"], strict=True):
        assert f"{feature} {feature.split('_')[0]} {weight:.4f}" in table


def test_a_changed_model_bundle_is_named_and_the_calculator_shows_no_ci(study_dir, tmp_path):
    """The report reads model/ through ModelBundle.load: a bundle changed after it was
    written is refused, and the calculator says why instead of computing from it."""
    import shutil

    from toolkit.report import calculator
    from toolkit.report import study as report_study

    copy = tmp_path / "study"
    (copy / "results").mkdir(parents=True)
    shutil.copy(study_dir / "results" / "metrics.json", copy / "results" / "metrics.json")
    shutil.copytree(study_dir / "model", copy / "model")
    intact = report_study.load(copy)
    assert intact.bundle is not None and intact.bundle_note == ""
    assert len(intact.bundle.sha256) == 64
    cox = copy / "model" / "cox_integrated.json"
    cox.write_text(cox.read_text(encoding="utf-8").replace("[", "[ ", 1), encoding="utf-8")
    changed = report_study.load(copy)
    assert changed.bundle is None
    assert "cox_integrated.json: its SHA-256 differs" in changed.bundle_note
    page = calculator.calculator_html(
        intact.bundle.nomograms, bundle=changed.bundle, bundle_note=changed.bundle_note
    )
    assert 'id="model-bundle-data"' not in page
    assert "No 95% CI and no training-range check" in page
    assert "its SHA-256 differs" in page
