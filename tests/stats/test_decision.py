"""Decision curves against the KM formula computed with survival::survfit."""

import numpy as np
import pytest

from toolkit.rbridge import study as rstudy
from toolkit.stats.decision import decision_table, net_benefit, treat_all


def test_net_benefit_equals_r_on_lung(lung):
    d = lung.dropna(subset=["ph.ecog"])
    t = d["time"].to_numpy(float)
    e = (d["status"] == 2).to_numpy(float)
    lp = 0.02 * d["age"].to_numpy(float) + 0.4 * d["ph.ecog"].to_numpy(float)
    thresholds = np.round(np.arange(0.01, 1.0, 0.01), 2)
    for horizon in (180.0, 365.0, 1200.0):
        risk = 1 - 0.6 ** np.exp(lp - lp.mean())
        theirs = rstudy.net_benefit(t, e, risk, horizon, thresholds)
        np.testing.assert_allclose(
            net_benefit(t, e, risk, horizon, thresholds), theirs["model"], atol=1e-12
        )
        np.testing.assert_allclose(treat_all(t, e, horizon, thresholds), theirs["all"], atol=1e-12)


def test_table_has_reference_strategies(veteran):
    t = veteran["time"].to_numpy(float)
    e = veteran["status"].to_numpy(float)
    risk = 1 - veteran["karno"].to_numpy(float) / 100
    table = decision_table(t, e, {"m": {30.0: risk}}, [30.0], thresholds=[0.1, 0.5])
    assert set(table["model"]) == {"m", "treat all", "treat none"}
    assert (table.loc[table["model"] == "treat none", "net_benefit"] == 0).all()


def test_threshold_of_one_is_refused():
    with pytest.raises(ValueError, match="thresholds"):
        treat_all([1.0, 2.0], [1, 0], 1.5, [1.0])


# --------------------------------------------------------------------------- dcurves


def _dcurves(t, e, risks, horizon, thresholds):
    """``dcurves.dca`` 1.1.7 (Python) with a survival outcome, per 100 patients."""
    import dcurves
    import pandas as pd

    data = pd.DataFrame({"time": t, "event": e, **risks})
    return dcurves.dca(
        data=data,
        outcome="event",
        modelnames=list(risks),
        thresholds=list(thresholds),
        time=horizon,
        time_to_outcome_col="time",
        nper=100,
    )


def _r_datasets(pbc, lung):
    """pbc at its median death time (an event time) and lung at the 90th percentile of its
    death times, each with a Cox model's predicted risk of death by then."""
    from toolkit.stats import cox

    pbc = pbc.dropna(subset=["bili", "albumin", "age"]).reset_index(drop=True)
    lung = lung.dropna(subset=["ph.ecog"]).reset_index(drop=True)
    cases = [
        ("pbc", pbc["time"], pbc["status"] == 2,
         np.column_stack([np.log(pbc["bili"]), pbc["albumin"], pbc["age"]])),
        ("lung", lung["time"], lung["status"] == 2, lung[["ph.ecog", "age", "sex"]].to_numpy()),
    ]  # fmt: skip
    for name, time, event, x in cases:
        t, e, x = np.asarray(time, float), np.asarray(event, float), np.asarray(x, float)
        deaths = np.sort(t[e == 1])
        horizon = deaths[len(deaths) // 2] if name == "pbc" else np.quantile(deaths, 0.9)
        survival = cox.fit(x, t, e).predict_survival(x, [horizon])[:, 0]
        yield name, t, e, float(horizon), 1 - survival


def _coarse(risk):
    """The risk rounded to 0.01 (ties with the thresholds), its lowest tenth set to 0 and
    its highest twentieth to 1 (dcurves' epsilon shifts)."""
    out = np.round(risk, 2)
    out[risk <= np.quantile(risk, 0.1)] = 0.0
    out[risk >= np.quantile(risk, 0.95)] = 1.0
    return out


_COLUMNS = [
    ("test_pos_rate", "test_positive"),
    ("tp_rate", "true_positive"),
    ("fp_rate", "false_positive"),
    ("net_benefit", "net_benefit"),
]


def test_decision_curve_equals_dcurves_on_pbc_and_lung(pbc, lung):
    """Model, treat all (risk 1) and treat none (risk 0) rows of dcurves.dca, 1e-10.

    The coarse risks lie exactly on the thresholds (treated: risk >= threshold)
    and are 0 (not treated even at threshold 0) or 1; the treated patients'
    follow-up ends before the horizon at some thresholds (NaN on both sides).
    """
    from toolkit.stats.decision import DCURVES_THRESHOLDS, decision_curve

    pt = np.array(DCURVES_THRESHOLDS)
    undefined = on_threshold = zeros = 0
    for name, t, e, horizon, risk in _r_datasets(pbc, lung):
        rounded = _coarse(risk)
        on_threshold += int(np.isin(rounded, pt[1:]).sum())
        zeros += int((rounded == 0).sum())
        risks = {"model": risk, "rounded": rounded}
        ref = _dcurves(t, e, risks, horizon, pt)
        ours = {m: decision_curve(t, e, r, horizon) for m, r in risks.items()}
        ours["all"] = decision_curve(t, e, np.ones(len(t)), horizon)
        ours["none"] = decision_curve(t, e, np.zeros(len(t)), horizon)
        for model, curve in ours.items():
            theirs = ref[ref["model"] == model]
            where = f"{name}, t = {horizon:g}, {model}"
            np.testing.assert_array_equal(theirs["threshold"], curve.thresholds)
            for column, field in _COLUMNS:
                np.testing.assert_allclose(
                    getattr(curve, field), theirs[column], atol=1e-10, rtol=0,
                    err_msg=f"{where}: {column}",
                )  # fmt: skip
            avoided = theirs["net_intervention_avoided"].to_numpy(float)
            np.testing.assert_allclose(
                curve.interventions_avoided[1:], avoided[1:], atol=1e-10, rtol=1e-10,
                err_msg=f"{where}: net_intervention_avoided",
            )  # fmt: skip
            assert np.isnan(curve.interventions_avoided[0]) and not np.isfinite(avoided[0])
            np.testing.assert_allclose(curve.prevalence, theirs["prevalence"], atol=1e-10)
            np.testing.assert_allclose(curve.treat_all, ref.loc[ref["model"] == "all",
                                       "net_benefit"], atol=1e-10, rtol=0)  # fmt: skip
            undefined += int(np.isnan(curve.net_benefit).sum())
    assert undefined > 0 and on_threshold > 0 and zeros > 0


def test_decision_curve_worked_by_hand():
    """Six patients, horizon 3.5: every number from the formula, in fractions.

    KM of everyone at 3.5: 5/6 * 3/4 = 5/8 (prevalence 3/8). At p = 0.3 the
    treated (risk >= 0.3, the tie included) are times 1, 2, 3, 4: KM 3/4 * 1/2 =
    3/8, share 2/3, so TP = 5/8 * 2/3 = 5/12, FP = 3/8 * 2/3 = 1/4 and NB =
    5/12 - (3/7)(1/4) = 13/42; treat all 3/8 - (3/7)(5/8) = 3/28; interventions
    avoided (13/42 - 3/28) / (3/7) * 100 = 425/9. At p = 0.5 the treated (times 1
    and 3) both died, but before 3.5: dcurves leaves it undefined, while the
    stdca-style ``net_benefit`` carries the KM (0) forward: NB = share = 1/3.
    At p = 0.95 nobody is treated: NB 0, treat all 3/8 - 19 * 5/8 = -23/2.
    """
    from toolkit.stats.decision import decision_curve

    t = np.array([1.0, 2, 3, 4, 5, 6])
    e = np.array([1.0, 0, 1, 1, 0, 0])
    risk = np.array([0.9, 0.3, 0.6, 0.4, 0.1, 0.2])
    pt = [0.0, 0.3, 0.5, 0.95]
    curve = decision_curve(t, e, risk, 3.5, pt)
    nan = np.nan
    np.testing.assert_allclose(curve.prevalence, 3 / 8, rtol=1e-15)
    np.testing.assert_allclose(curve.test_positive, [1, 2 / 3, 1 / 3, 0], rtol=1e-15)
    np.testing.assert_allclose(curve.risk_among_positive, [3 / 8, 5 / 8, nan, 0], rtol=1e-15)
    np.testing.assert_allclose(curve.true_positive, [3 / 8, 5 / 12, nan, 0], rtol=1e-15)
    np.testing.assert_allclose(curve.false_positive, [5 / 8, 1 / 4, nan, 0], rtol=1e-15)
    np.testing.assert_allclose(curve.net_benefit, [3 / 8, 13 / 42, nan, 0], rtol=1e-14)
    np.testing.assert_allclose(curve.treat_all, [3 / 8, 3 / 28, -1 / 4, -23 / 2], rtol=1e-14)
    np.testing.assert_allclose(
        curve.interventions_avoided, [nan, 425 / 9, nan, 1150 / 19], rtol=1e-14
    )
    np.testing.assert_allclose(net_benefit(t, e, risk, 3.5, [0.5]), [1 / 3], rtol=1e-15)
    zero = decision_curve(t, e, np.where(risk == 0.1, 0.0, risk), 3.5, [0.0])
    assert zero.test_positive[0] == 5 / 6  # a risk of 0 is not treated even at threshold 0


def _lung_two_models(lung, horizon):
    from toolkit.stats import cox

    d = lung.dropna(subset=["ph.ecog"]).reset_index(drop=True)
    t, e = d["time"].to_numpy(float), (d["status"] == 2).to_numpy(float)
    x = d[["ph.ecog", "age", "sex"]].to_numpy(float)
    full = 1 - cox.fit(x, t, e).predict_survival(x, [horizon])[:, 0]
    first = 1 - cox.fit(x[:, :1], t, e).predict_survival(x[:, :1], [horizon])[:, 0]
    return t, e, full, first


def test_net_benefit_difference_is_a_seeded_paired_percentile_bootstrap(lung):
    """The documented procedure, written out: resample rows, recompute, take quantiles."""
    from toolkit.stats.decision import compare, decision_curve

    t, e, a, b = _lung_two_models(lung, 365.0)
    pt = np.round(np.arange(0.05, 1.0, 0.05), 2)
    ours = compare(t, e, a, b, 365.0, pt, B=40, seed=7, conf_level=0.9)
    point = (
        decision_curve(t, e, a, 365.0, pt).net_benefit
        - decision_curve(t, e, b, 365.0, pt).net_benefit
    )
    np.testing.assert_array_equal(ours.difference, point)
    rows = np.random.default_rng(7).integers(0, len(t), size=(40, len(t)))
    diffs = np.array([
        decision_curve(t[i], e[i], a[i], 365.0, pt).net_benefit
        - decision_curve(t[i], e[i], b[i], 365.0, pt).net_benefit
        for i in rows
    ])  # fmt: skip
    used = np.isfinite(diffs).sum(axis=0)
    np.testing.assert_array_equal(ours.n_resamples, used)
    for k in range(len(pt)):
        kept = diffs[np.isfinite(diffs[:, k]), k]
        want = np.quantile(kept, [0.05, 0.95]) if len(kept) else [np.nan, np.nan]
        np.testing.assert_allclose([ours.lower[k], ours.upper[k]], want, rtol=1e-13, atol=1e-15)
    assert used.max() == 40 and used.min() < 40  # some resamples end before 365 days
    again = compare(t, e, a, b, 365.0, pt, B=40, seed=7, conf_level=0.9)
    np.testing.assert_array_equal(again.lower, ours.lower)
    assert not np.array_equal(compare(t, e, a, b, 365.0, pt, B=40, seed=8).lower, ours.lower)


def test_net_benefit_difference_of_a_model_with_itself_is_zero(lung):
    from toolkit.stats.decision import compare

    t, e, a, _ = _lung_two_models(lung, 180.0)
    same = compare(t, e, a, a, 180.0, [0.1, 0.3, 0.5], B=20)
    np.testing.assert_array_equal(same.difference, 0.0)
    np.testing.assert_array_equal(same.lower, 0.0)
    np.testing.assert_array_equal(same.upper, 0.0)


def test_decision_curve_bad_input_is_named():
    import pandas as pd

    from toolkit.stats.decision import compare, decision_curve

    t, e = np.array([1.0, 2, 3, 4]), np.array([1.0, 0, 1, 0])
    with pytest.raises(ValueError, match="beyond the last follow-up"):
        decision_curve(t, e, [0.1, 0.2, 0.3, 0.4], 5.0)
    risk = pd.Series([0.1, 1.2, 0.3, -0.1], index=["P1", "P2", "P3", "P4"])
    with pytest.raises(
        ValueError, match=r"risk has predicted risks outside \[0, 1\] in rows P2, P4"
    ):
        decision_curve(t, e, risk, 3.0)
    with pytest.raises(ValueError, match="per must be"):
        decision_curve(t, e, [0.1, 0.2, 0.3, 0.4], 3.0, per=0)
    with pytest.raises(ValueError, match="at least 20"):
        compare(t, e, [0.1, 0.2, 0.3, 0.4], [0.4, 0.3, 0.2, 0.1], 3.0, B=19)
    with pytest.raises(ValueError, match="conf_level"):
        compare(t, e, [0.1, 0.2, 0.3, 0.4], [0.4, 0.3, 0.2, 0.1], 3.0, conf_level=1.0)
