"""The TRIPOD+AI checklist, filled from what this run reported.

TRIPOD+AI (Collins et al., BMJ 2024;385:e078378) has 27 items, several with
sub-items (52 rows in all). For each, :func:`checklist` gives the sections of
this report that answer it (links to their ids in study.qmd) or says "not
reported" and why: an item that only the authors can answer (funding, ethics,
the discussion), or one this run did not do (model updating, fairness, a
sample-size calculation). The requirement texts are short paraphrases, not the
statement's wording; the statement itself is the reference.

Answers that depend on the run are decided from ``StudyResults``: whether the
cohort is synthetic, the network weights, missing-data handling, exclusions,
whether the internal-validation section has results, and whether the locked model has
a model card (``model_card.TRIPOD_ITEMS``: the items it answers are linked to it).
"""

from __future__ import annotations

import html
from collections.abc import Callable
from dataclasses import dataclass

from toolkit.report import formatting as fmt
from toolkit.report import model_card
from toolkit.report.study import StudyResults


@dataclass(frozen=True)
class Item:
    """One checklist row: where this report answers it, or why it does not."""

    number: str
    section: str
    topic: str
    requirement: str
    where: tuple[str, ...] = ()
    note: str = ""

    @property
    def reported(self) -> bool:
        return bool(self.where)


_AUTHORS = "not reported: the manuscript's (the authors supply it; a run cannot)"
_DISCUSSION = "not reported: the discussion is the authors'; this report gives results only"

# (number, section, topic, requirement, where, note). Entries whose answer depends on
# the run are completed by _RUN_DEPENDENT below.
_ITEMS: tuple[tuple[str, str, str, str, tuple[str, ...], str], ...] = (
    ("1", "Title", "Title", "Identify the study as developing or evaluating a prediction model, "
     "its population, outcome and modelling approach", (), _AUTHORS),
    ("2", "Abstract", "Abstract", "Structured summary (TRIPOD+AI for Abstracts)", (), _AUTHORS),
    ("3a", "Introduction", "Background", "Healthcare context, rationale, existing models", (),
     _AUTHORS),
    ("3b", "Introduction", "Background", "Target population, place in the care pathway, "
     "intended users", (), _AUTHORS),
    ("3c", "Introduction", "Background", "Known health inequalities between groups", (),
     _AUTHORS),
    ("4", "Introduction", "Objectives", "Objectives: development, evaluation or both",
     ("sec-methods",), "development on the training set, evaluation on the validation set"),
    ("5a", "Methods", "Data", "Sources of data, separately for development and evaluation",
     ("sec-methods",), "source of data and the split into sets"),
    ("5b", "Methods", "Data", "Dates of accrual and end of follow-up", (),
     "not reported: study.toml records no accrual or follow-up dates"),
    ("6a", "Methods", "Participants", "Setting, number and location of centres", (),
     "not reported: study.toml records no setting or centres"),
    ("6b", "Methods", "Participants", "Eligibility criteria", ("sec-methods",
     "suptbl-exclusions"), "the patients analysed and every exclusion with its reason"),
    ("6c", "Methods", "Participants", "Treatments received", (),
     "not reported: treatments are not a study.toml field"),
    ("7", "Methods", "Data preparation", "Pre-processing and quality checks",
     ("sec-methods", "fig-workflow"), "registration, crop, z-scoring; the stages that ran"),
    ("8a", "Methods", "Outcome", "Outcome, time horizon, how and when assessed",
     ("sec-methods",), "outcome columns, unit and evaluation time points"),
    ("8b", "Methods", "Outcome", "Qualifications of outcome assessors if subjective", (),
     "not reported: the outcome is a recorded time and event indicator"),
    ("8c", "Methods", "Outcome", "Blinding of outcome assessment", (), _AUTHORS),
    ("9a", "Methods", "Predictors", "Choice of candidate predictors, any pre-selection",
     ("sec-methods", "suptbl-univariate"), "clinical candidates and the image features"),
    ("9b", "Methods", "Predictors", "Definition, how and when predictors were measured",
     ("sec-methods",), "variables, levels, cut-offs, units; the imaging pipeline"),
    ("9c", "Methods", "Predictors", "Assessors of predictors needing interpretation",
     ("sec-methods", "suptbl-signature"), "ROI readers and the features' ICC"),
    ("10", "Methods", "Sample size", "How the study size was arrived at",
     ("sec-methods",), "events per candidate features; no formal calculation"),
    ("11", "Methods", "Missing data", "How missing data were handled", ("sec-methods",), ""),
    ("12a", "Methods", "Analysis", "How the data were used (partitioning, resampling)",
     ("sec-methods",), "training and validation sets, bootstrap resamples"),
    ("12b", "Methods", "Analysis", "Handling of predictors (functional form, scaling)",
     ("sec-methods",), "standardised features, categorised clinical variables"),
    ("12c", "Methods", "Analysis", "Model type, building steps, tuning, internal validation",
     ("sec-methods", "tbl-optimism", "suptbl-ph"), "ICC, mRMR, elastic-net CV, univariate "
     "screen, stepwise AIC; the PH assumption; bootstrap validation"),
    ("12d", "Methods", "Analysis", "Heterogeneity across clusters (centres)", (),
     "not reported: study.toml declares no centre"),
    ("12e", "Methods", "Analysis", "Performance measures and their rationale",
     ("sec-methods",), "discrimination, calibration, accuracy, decision curves"),
    ("12f", "Methods", "Analysis", "Model updating after evaluation", (),
     "not reported: the models were not updated (frozen before validation)"),
    ("12g", "Methods", "Analysis", "How predictions were calculated in evaluation",
     ("sec-calculator", "tbl-multivariable"), "the nomograms' formula and calculator"),
    ("13", "Methods", "Class imbalance", "Methods for class imbalance", (),
     "not applicable: time-to-event outcome, no resampling for imbalance"),
    ("14", "Methods", "Fairness", "Approaches to model fairness", (),
     "not reported: no subgroup or fairness analysis was run"),
    ("15", "Methods", "Model output", "Output of the model, thresholds for groups",
     ("tbl-riskgroups", "sec-calculator"), "predicted survival; median-split risk groups"),
    ("16", "Methods", "Training vs evaluation", "Differences between development and "
     "evaluation data", ("tbl-baseline",), "training against validation, with tests"),
    ("17", "Methods", "Ethical approval", "Ethics committee and consent", (), _AUTHORS),
    ("18a", "Open science", "Funding", "Sources of funding", (), _AUTHORS),
    ("18b", "Open science", "Conflicts of interest", "Declarations of interest", (), _AUTHORS),
    ("18c", "Open science", "Protocol", "Where the protocol is, or none prepared", (), _AUTHORS),
    ("18d", "Open science", "Registration", "Registration, or not registered", (), _AUTHORS),
    ("18e", "Open science", "Data sharing", "Availability of the study data", (), _AUTHORS),
    ("18f", "Open science", "Code sharing", "Availability of the analysis code",
     ("sec-rcheck",), "sigkit (open source) with this run's provenance and R cross-check"),
    ("19", "Open science", "Patient and public involvement", "Patient and public involvement",
     (), _AUTHORS),
    ("20a", "Results", "Participants", "Flow of participants, with and without the outcome, "
     "follow-up", ("sec-participants", "fig-km", "suptbl-exclusions"), ""),
    ("20b", "Results", "Participants", "Characteristics overall and per data source",
     ("tbl-baseline",), ""),
    ("20c", "Results", "Participants", "Evaluation data compared with development data",
     ("tbl-baseline",), ""),
    ("21", "Results", "Model development", "Participants and events in each analysis",
     ("sec-participants", "tbl-baseline"), ""),
    ("22", "Results", "Model specification", "The full model (coefficients, baseline "
     "survival) for predictions in new individuals", ("tbl-multivariable", "sec-calculator",
     "suptbl-signature"), "models.json and nomogram JSON hold every coefficient"),
    ("23a", "Results", "Model performance", "Performance with CIs, key subgroups, plots",
     ("tbl-cindex", "tbl-accuracy", "tbl-calslope", "tbl-calibration", "tbl-optimism",
      "fig-decision", "tbl-decision"),
     "no subgroup analysis"),
    ("23b", "Results", "Model performance", "Heterogeneity of performance across clusters",
     (), "not reported: study.toml declares no centre"),
    ("24", "Results", "Model updating", "Results of model updating", (),
     "not applicable: no updating was done"),
    ("25", "Discussion", "Interpretation", "Overall interpretation, fairness", (), _DISCUSSION),
    ("26", "Discussion", "Limitations", "Limitations and their effects", (), _DISCUSSION),
    ("27a", "Discussion", "Usability", "Handling poor or missing input data in use", (),
     _DISCUSSION),
    ("27b", "Discussion", "Usability", "User interaction and expertise needed", (), _DISCUSSION),
    ("27c", "Discussion", "Future research", "Next steps, applicability, generalisability", (),
     _DISCUSSION),
)  # fmt: skip


def _missing_data(results: StudyResults, item: Item) -> Item:
    rule = results.settings.get("validation", {}).get("missing", "complete-case")
    where = ("sec-methods", "suptbl-exclusions") if rule == "complete-case" else ("sec-methods",)
    return Item(**{**item.__dict__, "where": where, "note": f"rule: {rule}"})


def _clusters(results: StudyResults, item: Item) -> Item:
    if not results.settings.get("study", {}).get("centre"):
        return item
    where = ("suptbl-clustered", "tbl-riskgroups")
    note = "SEs clustered by centre, log-rank stratified by centre"
    return Item(**{**item.__dict__, "where": where, "note": note})


def _setting(results: StudyResults, item: Item) -> Item:
    centre = results.settings.get("study", {}).get("centre")
    if not centre:
        return item
    note = f"centres from the clinical table's {centre!r} column; no setting recorded"
    return Item(**{**item.__dict__, "where": ("suptbl-clustered",), "note": note})


def _data_source(results: StudyResults, item: Item) -> Item:
    if not results.synthetic:
        return item
    return Item(**{**item.__dict__, "note": f"{item.note}; the cohort is synthetic"})


def _predictors(results: StudyResults, item: Item) -> Item:
    if results.weights != "random":
        return item
    return Item(**{**item.__dict__, "note": f"{item.note}; the network's weights are random"})


_RUN_DEPENDENT: dict[str, Callable[[StudyResults, Item], Item]] = {
    "5a": _data_source,
    "9b": _predictors,
    "11": _missing_data,
    "6a": _setting,
    "12d": _clusters,
    "23b": _clusters,
}


def _card(item: Item) -> Item:
    """An item the model card answers: linked to it; the card's note where the report
    answered the item nowhere else."""
    note = item.note if item.reported else model_card.TRIPOD_ITEMS[item.number]
    return Item(**{**item.__dict__, "where": (*item.where, model_card.SECTION), "note": note})


def checklist(results: StudyResults, sections: frozenset[str] = frozenset()) -> tuple[Item, ...]:
    """The 52 rows of TRIPOD+AI for this run.

    ``sections`` are extra ids present in the report beyond the fixed ones (e.g.
    ``sec-internal`` when the internal-validation section has results, ``sec-model-card``
    when the model bundle has a model card); an item whose answer lies there links it too.
    """
    items = []
    for number, section, topic, requirement, where, note in _ITEMS:
        item = Item(number, section, topic, requirement, where, note)
        if number in _RUN_DEPENDENT:
            item = _RUN_DEPENDENT[number](results, item)
        if number in ("12c", "23a") and "sec-internal" in sections:
            item = Item(**{**item.__dict__, "where": (*item.where, "sec-internal")})
        if number in model_card.TRIPOD_ITEMS and model_card.SECTION in sections:
            item = _card(item)
        items.append(item)
    return tuple(items)


def _links(item: Item) -> str:
    return ", ".join(f'<a href="#{ident}">{html.escape(ident)}</a>' for ident in item.where)


def checklist_table(results: StudyResults, sections: frozenset[str] = frozenset()) -> str:
    """The checklist as an HTML table: item, topic, requirement, where answered, note."""
    rows = [
        [
            item.number,
            f"{item.section}: {item.topic}",
            item.requirement,
            _links(item) if item.reported else fmt.DASH,
            item.note,
        ]
        for item in checklist(results, sections)
    ]
    header = ["Item", "Topic", "Requirement (paraphrased)", "Where in this report", "Note"]
    return fmt.html_table(header, rows, raw_columns=(3,))
