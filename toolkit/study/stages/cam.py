"""cam: class-activation overlays of the highest- and lowest-signature validation patients.

``study.figures.cam_figures`` chooses the patients and draws each in the phase
whose signature features move that patient's score most; it reads the
signature, the scores, the features and the crops from their files, so the
stage takes them as inputs for its place in the pipeline, and is keyed on
signature.json and the crops' manifest. ``results/.cam_done.json`` lists the
figures written.

With a fine-tuned signature (``[signature] source = "finetuned"``) the maps are the
fine-tuned network's (``study.finetuned.cam_figures``: its Cox head's weights over its
backbone's last feature map), read from ``results/finetuned.safetensors`` with the
SHA-256 finetune.json records; the stage is then keyed on that file too.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from toolkit.artifacts import file_hash, read_json, write_json
from toolkit.study._stages import Cached
from toolkit.study.context import Context

N_PATIENTS = 2


def _finetuned_figures(ctx: Context) -> list[str]:
    from toolkit.study import finetuned

    recorded = read_json(ctx.paths.results / "finetune.json")["weights"]
    weights = finetuned.read_weights(ctx.paths.results / recorded["path"], recorded["sha256"])
    return finetuned.cam_figures(ctx, weights, N_PATIENTS)


def run(ctx: Context, given: Mapping[str, Any]) -> Cached:
    """Hands on ``cam``: the names of the figures written (results/figures/cam_<patient>)."""
    from toolkit.study.figures import cam_figures

    path = ctx.paths.results / ".cam_done.json"
    inputs = {
        "signature": file_hash(ctx.paths.results / "signature.json"),
        "crops": file_hash(given["crops"] / "manifest.json"),
    }
    tuned = ctx.config.signature.source == "finetuned"
    if tuned:
        from toolkit.study.finetuned import WEIGHTS_FILE

        inputs["finetuned"] = file_hash(ctx.paths.results / WEIGHTS_FILE)

    def compute(key: str) -> dict[str, Any]:
        if tuned:
            written = _finetuned_figures(ctx)
        else:
            written = cam_figures(ctx, given["clinical"], N_PATIENTS)
        write_json(path, {"figures": written, "provenance": ctx.prov(key, inputs)})
        return {"cam": written}

    return Cached(
        inputs=inputs,
        settings={"n": N_PATIENTS, "weights": ctx.weights_origin},
        files=(path,),
        compute=compute,
        load=lambda: {"cam": read_json(path)["figures"]},
    )
