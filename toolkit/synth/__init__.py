"""The built-in synthetic CECT cohort: phantoms, clinical variables and outcomes.

Everything it writes is labelled synthetic (SYNTHETIC.txt, ``synthetic = true``
in study.toml, a ``synthetic`` column in manifest.csv and ground_truth/).
"""

from toolkit.synth.cohort import SynthSummary, centre_counts, generate_cohort
from toolkit.synth.phantom import Grid

__all__ = ["Grid", "SynthSummary", "centre_counts", "generate_cohort"]
