"""The interactive nomogram calculator: plain JavaScript over results/nomogram_*.json.

It computes exactly what :class:`toolkit.stats.nomogram.Nomogram` computes
(docs/contracts.md): a categorical predictor's points are its level's points; a
numeric predictor's are ``(coef * x - min(coef * min, coef * max)) * points_per_lp``;
``lp = lp_at_zero_points + total / points_per_lp`` and
``S(t) = baseline_survival[t] ** exp(lp - lp_centre)``. Values outside a
numeric predictor's axis are extrapolated (and flagged), as in Python.

Every output element carries its full-precision value in ``data-value`` so
tests can compare it with Python's; the visible text is rounded.
"""

from __future__ import annotations

import html
import json
from collections.abc import Mapping
from dataclasses import replace

from toolkit.contracts import NomogramSpec

_SCRIPT = r"""
(function () {
  "use strict";
  var data = JSON.parse(document.getElementById("nomogram-data").textContent);
  var root = document.getElementById("nomogram-calculator");
  var modelSelect = root.querySelector("#calc-model");
  var inputs = root.querySelector("#calc-inputs");
  var outputs = root.querySelector("#calc-outputs");

  function numericPoints(p, x) {
    var lowest = Math.min(p.coef * p.min, p.coef * p.max);
    return (p.coef * x - lowest) * current().points_per_lp;
  }
  function current() { return data[modelSelect.value]; }
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
        var range = " range " + +p.min.toPrecision(4) + " to " + +p.max.toPrecision(4);
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
        var x = parseFloat(document.getElementById("calc-input-" + p.name).value);
        outside = outside || x < p.min || x > p.max;
      }
      setOutput("calc-points-" + p.name, pts, isFinite(pts) ? pts.toFixed(1) : "?");
      total += pts;
    });
    var lp = model.lp_at_zero_points + total / model.points_per_lp;
    setOutput("calc-total", total, isFinite(total) ? total.toFixed(1) : "?");
    setOutput("calc-lp", lp, isFinite(lp) ? lp.toFixed(3) : "?");
    Object.keys(model.baseline_survival).forEach(function (t) {
      var s = Math.pow(model.baseline_survival[t], Math.exp(lp - model.lp_centre));
      setOutput("calc-survival-" + t, s, isFinite(s) ? (100 * s).toFixed(1) + "%" : "?");
    });
    document.getElementById("calc-warning").hidden = !outside;
  }
  function buildOutputs() {
    var model = current();
    outputs.innerHTML = "";
    var rows = [["Total points", "calc-total"], ["Linear predictor", "calc-lp"]];
    Object.keys(model.baseline_survival).sort(function (a, b) { return a - b; })
      .forEach(function (t) {
        var unit = model.time_unit.replace(/s$/, "");
        rows.push([t + "-" + unit + " survival", "calc-survival-" + t]);
      });
    rows.forEach(function (r) {
      var row = document.createElement("tr");
      row.appendChild(text("th", r[0]));
      row.appendChild(text("td", "", {id: r[1], "class": "num"}));
      outputs.appendChild(row);
    });
  }
  function rebuild() { buildInputs(); buildOutputs(); update(); }
  modelSelect.addEventListener("change", rebuild);
  rebuild();
})();
"""


def calculator_html(nomograms: Mapping[str, NomogramSpec], default: str = "integrated") -> str:
    """The calculator's HTML: the nomograms' JSON, a model chooser, inputs and outputs.

    Parameters
    ----------
    nomograms : model name -> its results/nomogram_<model>.json record.
    default : the model shown first.
    """
    if not nomograms:
        return '<p class="missing">Not produced by this run: results/nomogram_*.json.</p>'
    # the calculator's data is the nomogram JSON without its provenance
    payload = json.dumps(
        {name: replace(n, provenance=None).to_json() for name, n in nomograms.items()}
    )
    payload = payload.replace("</", "<\\/")
    first = default if default in nomograms else next(iter(nomograms))
    options = "".join(
        f'<option value="{html.escape(name)}"{" selected" if name == first else ""}>'
        f"{html.escape(name.capitalize())} nomogram</option>"
        for name in nomograms
    )
    return f"""<div id="nomogram-calculator" class="calculator">
<script type="application/json" id="nomogram-data">{payload}</script>
<p><label for="calc-model">Model</label> <select id="calc-model">{options}</select></p>
<table class="report-table calc-table"><thead><tr><th>Predictor</th><th>Value</th>
<th>Points</th></tr></thead><tbody id="calc-inputs"></tbody></table>
<table class="report-table calc-table"><tbody id="calc-outputs"></tbody></table>
<p id="calc-warning" class="note" hidden>A value lies outside the nomogram's axis: the points
are extrapolated beyond the training range.</p>
<script>{_SCRIPT}</script>
</div>"""
