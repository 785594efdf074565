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
