"""The interactive nomogram calculator: plain JavaScript over the locked model bundle.

Points: exactly what :class:`toolkit.stats.nomogram.Nomogram` computes
(docs/contracts.md): a categorical predictor's points are its level's points; a
numeric predictor's are ``(coef * x - min(coef * min, coef * max)) * points_per_lp``;
``lp = lp_at_zero_points + total / points_per_lp``.

Survival and its 95% CI, given the study's model bundle (``STUDY_DIR/model/``,
:class:`toolkit.study.bundle.ModelBundle`): the page computes what
``BundledCox.predict`` computes (``survfit(fit, newdata)``, log CI, survival 3.5-3)
from the terms :meth:`BundledCox.survival_terms` evaluates at the horizons and
embeds (design terms, coefficients, means, covariance, the baseline hazard's curve
terms, the normal quantile); the formula is in that method's docstring. A bundle made
under multiple imputation gives each model's ``m`` per-imputation fits
(:func:`pooled_terms`), and the page pools their predictions as
``PooledCox.predict`` does (Rubin's rules on log H, a t quantile at the Barnard-Rubin
df, computed in the page; log-log limits). An entered
numeric value outside the bundle's training range is named in a warning, and the page
says which bundle (model.json's SHA-256) it computes. Without a bundle (a run before
the bundle stage) the survival is the nomogram's ``baseline_survival ** exp(lp -
lp_centre)``, without CI, and the warning is the nomogram axis's, as before.

Every output element carries its full-precision value in ``data-value`` so
tests can compare it with Python's; the visible text is rounded. The page loads
nothing: data and script are inline.
"""

from __future__ import annotations

import html
import json
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from toolkit.contracts import NomogramSpec
from toolkit.stats.pooling import LAMBDA_FLOOR
from toolkit.stats.wald import quantile
from toolkit.study.bundle import CONF_INT, ModelBundle, PooledCox

_SCRIPT = r"""
(function () {
  "use strict";
  var data = JSON.parse(document.getElementById("nomogram-data").textContent);
  var bundleData = document.getElementById("model-bundle-data");
  var bundle = bundleData ? JSON.parse(bundleData.textContent) : null;
  var root = document.getElementById("nomogram-calculator");
  var modelSelect = root.querySelector("#calc-model");
  var inputs = root.querySelector("#calc-inputs");
  var outputs = root.querySelector("#calc-outputs");

  function numericPoints(p, x) {
    var lowest = Math.min(p.coef * p.min, p.coef * p.max);
    return (p.coef * x - lowest) * current().points_per_lp;
  }
  function current() { return data[modelSelect.value]; }
  function prediction() { return bundle ? bundle.models[modelSelect.value] : null; }
  function valueOf(name) { return document.getElementById("calc-input-" + name).value; }
  function design(pred) {
    return pred.terms.map(function (term) {
      if (term.level === null) { return parseFloat(valueOf(term.variable)); }
      return valueOf(term.variable) === term.level ? 1 : 0;
    });
  }
  function dot(a, b) {
    var sum = 0;
    for (var j = 0; j < a.length; j++) { sum += a[j] * b[j]; }
    return sum;
  }
  // BundledCox.survival_terms' formula: survfit's survival, log-scale SE and log CI
  function survivalWithCi(pred, x) {
    var lp = dot(x, pred.coef);
    var centred = x.map(function (v, j) { return v - pred.means[j]; });
    var risk = Math.exp(dot(centred, pred.coef));
    return pred.times.map(function (at) {
      var s = Math.pow(at.baseline_survival, Math.exp(lp - pred.lp_centre));
      var d = centred.map(function (c, j) { return at.cumulative_hazard * c - at.xbar[j]; });
      var quadratic = 0;
      for (var j = 0; j < d.length; j++) { quadratic += d[j] * dot(pred.covariance[j], d); }
      var se = risk * Math.sqrt(at.variance + quadratic);
      var logS = s === 0 ? NaN : Math.log(s);
      var lower = Math.exp(logS - pred.z * se);
      var upper = Math.min(Math.exp(logS + pred.z * se), 1);
      if (at.time < pred.first_time) { lower = 1; upper = 1; }
      return {time: at.time, survival: s, lower: lower, upper: upper, se: se};
    });
  }
  // Student's t quantile, for the pooled CI's Barnard-Rubin df: Newton's method on the
  // tail (the regularized incomplete beta, Lentz's continued fraction) below 1000 df,
  // the Cornish-Fisher expansion (Abramowitz and Stegun 26.7.5) above; z is the normal
  // quantile of the same probability
  var LANCZOS = [0.99999999999980993, 676.5203681218851, -1259.1392167224028,
    771.32342877765313, -176.61502916214059, 12.507343278686905, -0.13857109526572012,
    9.9843695780195716e-6, 1.5056327351493116e-7];
  function logGamma(x) {
    if (x < 0.5) { return Math.log(Math.PI / Math.sin(Math.PI * x)) - logGamma(1 - x); }
    x -= 1;
    var a = LANCZOS[0], t = x + 7.5;
    for (var i = 1; i < 9; i++) { a += LANCZOS[i] / (x + i); }
    return 0.5 * Math.log(2 * Math.PI) + (x + 0.5) * Math.log(t) - t + Math.log(a);
  }
  function tiny(v) { return Math.abs(v) < 1e-300 ? 1e-300 : v; }
  function betaFraction(a, b, x) {
    var c = 1, d = 1 / tiny(1 - (a + b) * x / (a + 1)), h = d;
    for (var m = 1; m <= 10000; m++) {
      var aa = m * (b - m) * x / ((a - 1 + 2 * m) * (a + 2 * m));
      d = 1 / tiny(1 + aa * d); c = tiny(1 + aa / c); h *= d * c;
      aa = -(a + m) * (a + b + m) * x / ((a + 2 * m) * (a + 1 + 2 * m));
      d = 1 / tiny(1 + aa * d); c = tiny(1 + aa / c);
      var step = d * c;
      h *= step;
      if (Math.abs(step - 1) < 1e-16) { break; }
    }
    return h;
  }
  function incompleteBeta(x, a, b) {
    if (x <= 0) { return 0; }
    if (x >= 1) { return 1; }
    var front = Math.exp(logGamma(a + b) - logGamma(a) - logGamma(b) +
      a * Math.log(x) + b * Math.log(1 - x));
    if (x < (a + 1) / (a + b + 2)) { return front * betaFraction(a, b, x) / a; }
    return 1 - front * betaFraction(b, a, 1 - x) / b;
  }
  function tQuantile(df, z, p) {
    if (df >= 1000) {
      var z2 = z * z;
      var g = [(z2 + 1) * z / 4, ((5 * z2 + 16) * z2 + 3) * z / 96,
        (((3 * z2 + 19) * z2 + 17) * z2 - 15) * z / 384,
        ((((79 * z2 + 776) * z2 + 1482) * z2 - 1920) * z2 - 945) * z / 92160];
      return z + g[0] / df + g[1] / (df * df) + g[2] / Math.pow(df, 3) + g[3] / Math.pow(df, 4);
    }
    var t = z, norm = logGamma((df + 1) / 2) - logGamma(df / 2) - 0.5 * Math.log(df * Math.PI);
    for (var i = 0; i < 100; i++) {
      var tail = 0.5 * incompleteBeta(df / (df + t * t), df / 2, 0.5);
      var density = Math.exp(norm - (df + 1) / 2 * Math.log(1 + t * t / df));
      var step = (tail - (1 - p)) / density;
      t += step;
      if (Math.abs(step) < 1e-15 * Math.max(1, Math.abs(t))) { break; }
    }
    return t;
  }
  window.sigkitCalculator = {tQuantile: tQuantile};
  // PooledCox.predict's formula: each imputation's fit predicts (survivalWithCi), and
  // each horizon is pooled by Rubin's rules on log H, within variance (se / H)^2, with
  // the Barnard-Rubin df of a large sample (stats.pooling.pool_survival)
  function pooledWithCi(pred, x) {
    var curves = pred.imputations.map(function (fit) { return survivalWithCi(fit, x); });
    var m = curves.length;
    return pred.times.map(function (at, k) {
      var q = [], u = [];
      curves.forEach(function (c) {
        var h = -Math.log(c[k].survival);
        if (h > 0) { q.push(Math.log(h)); u.push(Math.pow(c[k].se / h, 2)); }
      });
      if (q.length === 0) { return {time: at.time, survival: 1, lower: 1, upper: 1}; }
      if (q.length < m) { return {time: at.time, survival: NaN, lower: NaN, upper: NaN}; }
      var qbar = 0, ubar = 0, b = 0;
      for (var j = 0; j < m; j++) { qbar += q[j] / m; ubar += u[j] / m; }
      for (j = 0; j < m; j++) { b += (q[j] - qbar) * (q[j] - qbar) / (m - 1); }
      var total = ubar + (1 + 1 / m) * b;
      var lambda = Math.max((1 + 1 / m) * b / total, pred.lambda_floor);
      var df = (m - 1) / (lambda * lambda);
      var half = tQuantile(df, pred.z, (1 + pred.conf_int) / 2) * Math.sqrt(total);
      return {time: at.time, survival: Math.exp(-Math.exp(qbar)),
        lower: Math.exp(-Math.exp(qbar + half)), upper: Math.exp(-Math.exp(qbar - half))};
    });
  }
  function percent(v) { return isFinite(v) ? (100 * v).toFixed(1) + "%" : "?"; }
  function pointsOf(p) {
    var el = document.getElementById("calc-input-" + p.name);
    if (p.kind === "categorical") {
      for (var i = 0; i < p.levels.length; i++) {
        if (String(p.levels[i].value) === el.value) { return p.levels[i].points; }
      }
      return NaN;
    }
    return numericPoints(p, parseFloat(el.value));
  }
  function text(tag, content, attrs) {
    var el = document.createElement(tag);
    el.textContent = content;
    for (var k in (attrs || {})) { el.setAttribute(k, attrs[k]); }
    return el;
  }
  function buildInputs() {
    var model = current();
    inputs.innerHTML = "";
    model.predictors.forEach(function (p) {
      var row = document.createElement("tr");
      row.appendChild(text("th", p.label || p.name));
      var cell = document.createElement("td");
      var input;
      if (p.kind === "categorical") {
        input = document.createElement("select");
        p.levels.forEach(function (level) {
          var label = level.value + " (" + level.points.toFixed(0) + " points)";
          input.appendChild(text("option", label, {value: String(level.value)}));
        });
      } else {
        input = document.createElement("input");
        input.type = "number";
        input.step = "any";
        input.min = p.min;
        input.max = p.max;
        input.value = +((p.min + p.max) / 2).toPrecision(6);
        var pred = prediction();
        var range = pred && pred.range_text[p.name] ? " training range " + pred.range_text[p.name]
          : " range " + +p.min.toPrecision(4) + " to " + +p.max.toPrecision(4);
        cell.appendChild(text("span", range, {"class": "range"}));
      }
      input.id = "calc-input-" + p.name;
      input.setAttribute("aria-label", p.label || p.name);
      input.addEventListener("input", update);
      input.addEventListener("change", update);
      cell.insertBefore(input, cell.firstChild);
      row.appendChild(cell);
      row.appendChild(text("td", "", {id: "calc-points-" + p.name, "class": "num"}));
      inputs.appendChild(row);
    });
  }
  function setOutput(id, value, shown) {
    var el = document.getElementById(id);
    el.setAttribute("data-value", String(value));
    el.textContent = shown;
  }
  function update() {
    var model = current();
    var total = 0;
    var outside = false;
    model.predictors.forEach(function (p) {
      var pts = pointsOf(p);
      if (p.kind !== "categorical") {
        var x = parseFloat(valueOf(p.name));
        outside = outside || x < p.min || x > p.max;
      }
      setOutput("calc-points-" + p.name, pts, isFinite(pts) ? pts.toFixed(1) : "?");
      total += pts;
    });
    var lp = model.lp_at_zero_points + total / model.points_per_lp;
    setOutput("calc-total", total, isFinite(total) ? total.toFixed(1) : "?");
    setOutput("calc-lp", lp, isFinite(lp) ? lp.toFixed(3) : "?");
    var pred = prediction();
    if (pred) {
      var predicted = pred.imputations ? pooledWithCi(pred, design(pred))
        : survivalWithCi(pred, design(pred));
      predicted.forEach(function (r) {
        var key = String(r.time);
        setOutput("calc-survival-" + key, r.survival, percent(r.survival));
        setOutput("calc-lower-" + key, r.lower, percent(r.lower));
        setOutput("calc-upper-" + key, r.upper, percent(r.upper));
      });
      rangeWarning(model, pred);
      return;
    }
    Object.keys(model.baseline_survival).forEach(function (t) {
      var s = Math.pow(model.baseline_survival[t], Math.exp(lp - model.lp_centre));
      setOutput("calc-survival-" + t, s, percent(s));
    });
    document.getElementById("calc-warning").hidden = !outside;
  }
  // each entered numeric value outside the bundle's training range, named
  function rangeWarning(model, pred) {
    var list = document.getElementById("calc-outside");
    list.innerHTML = "";
    model.predictors.forEach(function (p) {
      var range = pred.training_range[p.name];
      if (p.kind === "categorical" || !range) { return; }
      var typed = valueOf(p.name);
      var x = parseFloat(typed);
      if (!(x < range[0] || x > range[1])) { return; }
      var item = text("li", (p.label || p.name) + ": " + typed +
        " is outside the training range " + pred.range_text[p.name], {
          "data-variable": p.name, "data-value": String(x),
          "data-min": String(range[0]), "data-max": String(range[1])});
      list.appendChild(item);
    });
    document.getElementById("calc-warning").hidden = list.children.length === 0;
  }
  function buildOutputs() {
    var model = current();
    var pred = prediction();
    outputs.innerHTML = "";
    var unit = model.time_unit.replace(/s$/, "");
    var rows = [["Total points", "calc-total"], ["Linear predictor", "calc-lp"]];
    var times = pred ? pred.times.map(function (at) { return String(at.time); })
      : Object.keys(model.baseline_survival);
    times.sort(function (a, b) { return a - b; }).forEach(function (t) {
      rows.push([t + "-" + unit + " survival", "calc-survival-" + t, t]);
    });
    rows.forEach(function (r) {
      var row = document.createElement("tr");
      row.appendChild(text("th", r[0]));
      row.appendChild(text("td", "", {id: r[1], "class": "num"}));
      if (pred && r[2] !== undefined) {
        var ci = document.createElement("td");
        ci.appendChild(text("span", "95% CI "));
        ci.appendChild(text("span", "", {id: "calc-lower-" + r[2], "class": "num"}));
        ci.appendChild(text("span", " to "));
        ci.appendChild(text("span", "", {id: "calc-upper-" + r[2], "class": "num"}));
        row.appendChild(ci);
      }
      outputs.appendChild(row);
    });
  }
  function rebuild() { buildInputs(); buildOutputs(); update(); }
  modelSelect.addEventListener("change", rebuild);
  rebuild();
})();
"""


def calculator_html(
    nomograms: Mapping[str, NomogramSpec],
    default: str = "integrated",
    bundle: ModelBundle | None = None,
    bundle_note: str = "",
) -> str:
    """The calculator's HTML: the nomograms' JSON, a model chooser, inputs and outputs.

    Parameters
    ----------
    nomograms : model name -> its results/nomogram_<model>.json record; with ``bundle``,
        the bundle's nomograms are used instead (the same record as the models stage
        wrote, as locked).
    default : the model shown first.
    bundle : the study's locked model bundle: survival with its 95% CI, the training-range
        warning and the bundle's hash. None: the nomograms' survival only, ``bundle_note``
        saying why.
    """
    if bundle is not None:
        nomograms = dict(bundle.nomograms)
    if not nomograms:
        return '<p class="missing">Not produced by this run: results/nomogram_*.json.</p>'
    # the calculator's data is the nomogram JSON without its provenance
    payload = _script_json(
        {name: replace(n, provenance=None).to_json() for name, n in nomograms.items()}
    )
    bundle_json, bundle_note = _bundle_payload(bundle, nomograms, bundle_note)
    first = default if default in nomograms else next(iter(nomograms))
    options = "".join(
        f'<option value="{html.escape(name)}"{" selected" if name == first else ""}>'
        f"{html.escape(name.capitalize())} nomogram</option>"
        for name in nomograms
    )
    return f"""<div id="nomogram-calculator" class="calculator">
<script type="application/json" id="nomogram-data">{payload}</script>
{_bundle_block(bundle, bundle_json, bundle_note)}
<p><label for="calc-model">Model</label> <select id="calc-model">{options}</select></p>
<table class="report-table calc-table"><thead><tr><th>Predictor</th><th>Value</th>
<th>Points</th></tr></thead><tbody id="calc-inputs"></tbody></table>
<table class="report-table calc-table"><tbody id="calc-outputs"></tbody></table>
{_warning(bundle_json)}
<script>{_SCRIPT}</script>
</div>"""


def range_text(low: float, high: float) -> str:
    """A training range as the calculator's warning states it (4 significant digits)."""
    return f"{low:.4g} to {high:.4g}"


def bundle_data(bundle: ModelBundle, models) -> dict[str, Any]:
    """The bundle's part of the page: its hash, and per model the terms its survival and CI
    need at the horizons (``BundledCox.survival_terms``) with its ranges' text."""
    entries = {}
    for name in models:
        locked = bundle.models[name]
        if isinstance(locked, PooledCox):
            terms = pooled_terms(locked, bundle.horizons)
        else:
            terms = locked.survival_terms(bundle.horizons)
        terms["range_text"] = {k: range_text(*v) for k, v in terms["training_range"].items()}
        entries[name] = terms
    return {
        "sha256": bundle.sha256,
        "study": bundle.study,
        "sigkit_version": bundle.sigkit_version,
        "models": entries,
    }


def pooled_terms(locked: PooledCox, times) -> dict[str, Any]:
    """A model under multiple imputation as the page computes it (``PooledCox.predict``):
    each imputation's ``survival_terms`` in ``imputations``, and the pooled model's terms,
    horizons and training ranges."""
    return {
        "terms": [{"variable": t.variable, "level": t.level} for t in locked.model.terms],
        "times": [{"time": float(t)} for t in times],
        "imputations": [fit.survival_terms(times) for fit in locked.fits],
        "z": quantile(CONF_INT),
        "conf_int": CONF_INT,
        "lambda_floor": LAMBDA_FLOOR,  # the pooling's floor of lambda (its df's ceiling)
        "training_range": {k: list(v) for k, v in locked.ranges.items()},
    }


def _script_json(data: Any, allow_nan: bool = True) -> str:
    return json.dumps(data, allow_nan=allow_nan).replace("</", "<\\/")


def _bundle_payload(bundle: ModelBundle | None, models, note: str) -> tuple[str | None, str]:
    """The bundle's JSON for the page, or None and why."""
    if bundle is None:
        return None, note
    try:  # JSON.parse takes no NaN: a model with a non-finite term gets no CI, said
        return _script_json(bundle_data(bundle, models), allow_nan=False), ""
    except ValueError:
        return None, "its models have non-finite terms"


def _bundle_block(bundle: ModelBundle | None, payload: str | None, note: str) -> str:
    if bundle is None or payload is None:
        why = f" ({html.escape(note)})" if note else ""
        return (
            '<p id="calc-bundle" class="note">No 95% CI and no training-range check: the '
            f"locked model bundle is not available{why}.</p>"
        )
    sha = html.escape(bundle.sha256)
    if bundle.imputation is None:
        ci = "the 95% CI of <code>survfit(fit, newdata)</code> (log scale)"
    else:
        ci = (
            f"the 95% CI pooled over the {bundle.imputation.m} imputations' Cox fits by "
            "Rubin's rules (log-log scale; the model was fitted under multiple imputation)"
        )
    return f"""<script type="application/json" id="model-bundle-data">{payload}</script>
<p id="calc-bundle" data-sha256="{sha}">Computed from the locked model bundle
<code>model/model.json</code>, SHA-256 <code>{sha}</code> (study
{html.escape(bundle.study)}, sigkit {html.escape(bundle.sigkit_version)}): each survival with
{ci}, as <code>sigkit apply</code> predicts it.</p>"""


def _warning(payload: str | None) -> str:
    if payload is None:
        return """<p id="calc-warning" class="note" hidden>A value lies outside the nomogram's axis:
the points are extrapolated beyond the training range.</p>"""
    return """<div id="calc-warning" class="note" hidden><p>Outside the training data: the model
extrapolates, and its interval does not account for that.</p><ul id="calc-outside"></ul></div>"""
