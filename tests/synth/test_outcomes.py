import numpy as np

from toolkit.synth import outcomes
from toolkit.synth.clinical import bclc_stage, draw_phenotype


def test_linear_predictor_is_the_documented_formula():
    eta = outcomes.linear_predictor(
        size_cm=[6.0, 12.0],
        necrosis=[0.0, 0.5],
        heterogeneity=[18.0, 28.0],
        bclc=["A", "C"],
        alt=[39.9, 40.0],
        afp=[10.0, 400.0],
    )
    expected_second = 0.70 * 1 + 1.50 * 0.5 + 0.030 * 10 + 0.85 + 0.45 + 0.15
    np.testing.assert_allclose(eta, [0.0, expected_second], atol=1e-12)


def test_weibull_scale_sets_the_marginal_median():
    eta = np.random.default_rng(0).normal(0, 0.7, 500)
    scale = outcomes.weibull_scale_for_median(eta, 1.4, 19.2)
    survival = np.mean(np.exp(-scale * np.exp(eta) * 19.2**1.4))
    assert abs(survival - 0.5) < 1e-9


def test_median_overall_survival_is_near_19_months_without_censoring():
    rng = np.random.default_rng(1)
    phen = draw_phenotype(20000, rng)
    stage = bclc_stage(phen.invasion, phen.ecog, phen.n_tumours > 1, phen.size_cm)
    eta = outcomes.linear_predictor(
        phen.size_cm, phen.necrosis, phen.heterogeneity, stage, phen.alt, phen.afp
    )
    scale = outcomes.weibull_scale_for_median(eta, outcomes.OS_SHAPE, outcomes.OS_MEDIAN)
    times = outcomes._weibull(rng, eta, scale, outcomes.OS_SHAPE)
    assert abs(np.median(times) - 19.2) < 0.6
    # risk matters: the top eta quartile dies earlier than the bottom one
    top, bottom = eta > np.quantile(eta, 0.75), eta < np.quantile(eta, 0.25)
    assert np.median(times[top]) < 0.6 * np.median(times[bottom])


def test_censoring_is_administrative_and_pfs_precedes_os():
    rng = np.random.default_rng(2)
    result = outcomes.draw_outcomes(rng.normal(0, 0.6, 3000), rng)
    assert result.os_months.max() <= outcomes.LOCK_MONTH
    assert (result.pfs_months <= result.os_months).all()
    assert 0.5 < result.os_event.mean() < 0.95
    assert (result.pfs_event >= result.os_event).all()


def test_bclc_follows_its_criteria():
    stage = bclc_stage(
        invasion=[False, False, True, False],
        ecog=[0, 0, 0, 1],
        multiple=[False, True, False, False],
        size_cm=[4.0, 3.0, 3.0, 3.0],
    )
    assert list(stage) == ["A", "B", "C", "C"]
