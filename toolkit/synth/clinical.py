"""Patient-level draws: tumour phenotype and the reference study's clinical variables.

One latent tumour burden b ~ N(0, 1) per patient ties the variables together
the way they co-vary in unresectable HCC:

* largest tumour size (cm): log size ~ N(log 6 + 0.33 b, 0.22²), kept in [2, 11];
* tumour count: multiple with probability logistic(-0.4 + 0.9 b); if multiple,
  2 + Poisson(0.8) tumours (at most 6);
* necrotic core fraction: 0.28 + 0.12 b + N(0, 0.16²) in [0, 0.7]; values under
  0.15 mean no visible core (0);
* heterogeneity (HU): log-normal, median 18, log-SD 0.4, in [6, 45];
* macrovascular invasion / extrahepatic spread: probability logistic(-1.5 + 0.6 b);
* ECOG 1 with probability 0.25; BCLC C if invasion or ECOG 1, else B if the
  tumour is multiple or larger than 5 cm, else A;
* cirrhosis 70 %; Child-Pugh B with probability 0.06 + 0.14 × cirrhosis;
* HBV infection 85 %; HBsAg positive in 95 % of HBV patients and 2 % of the others;
* ALT (U/L): log ALT ~ N(log 36 + 0.15 HBV + 0.10 cirrhosis, 0.5²);
* AST (U/L): log AST = log 45 + 0.7 (log ALT - log 36) + 0.15 b + N(0, 0.3²);
* AFP (ng/mL): log AFP ~ N(log 120 + 0.9 b, 1.9²), in [1, 60 000].

Tumour number, distribution (unilobar/bilobar) and the size written to
clinical.csv are measured on the rendered image, so they agree with it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd


@dataclass(frozen=True)
class Phenotype:
    """Drawn per-patient values, one array entry per patient."""

    burden: np.ndarray
    size_cm: np.ndarray
    n_tumours: np.ndarray
    necrosis: np.ndarray
    heterogeneity: np.ndarray
    enhancement: np.ndarray
    washout: np.ndarray
    invasion: np.ndarray
    ecog: np.ndarray
    cirrhosis: np.ndarray
    child_pugh_b: np.ndarray
    hbv: np.ndarray
    hbsag: np.ndarray
    alt: np.ndarray
    ast: np.ndarray
    afp: np.ndarray


def _logistic(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def draw_phenotype(n: int, rng: np.random.Generator) -> Phenotype:
    """Draw the phenotype and clinical variables of `n` patients (see module docstring)."""
    b = rng.standard_normal(n)
    size = np.clip(np.exp(np.log(6.0) + 0.33 * b + 0.22 * rng.standard_normal(n)), 2.0, 11.0)
    multiple = rng.random(n) < _logistic(-0.4 + 0.9 * b)
    count = np.where(multiple, np.minimum(2 + rng.poisson(0.8, n), 6), 1)
    necrosis = np.clip(0.28 + 0.12 * b + 0.16 * rng.standard_normal(n), 0.0, 0.7)
    necrosis = np.where(necrosis < 0.15, 0.0, necrosis)
    heterogeneity = np.clip(np.exp(np.log(18.0) + 0.4 * rng.standard_normal(n)), 6.0, 45.0)
    enhancement = rng.uniform(45.0, 100.0, n)
    washout = rng.uniform(15.0, 45.0, n)
    invasion = rng.random(n) < _logistic(-1.5 + 0.6 * b)
    ecog = (rng.random(n) < 0.25).astype(int)
    cirrhosis = rng.random(n) < 0.70
    child_b = rng.random(n) < 0.06 + 0.14 * cirrhosis
    hbv = rng.random(n) < 0.85
    hbsag = rng.random(n) < np.where(hbv, 0.95, 0.02)
    log_alt = np.log(36.0) + 0.15 * hbv + 0.10 * cirrhosis + 0.5 * rng.standard_normal(n)
    log_ast = (
        np.log(45.0) + 0.7 * (log_alt - np.log(36.0)) + 0.15 * b + 0.3 * rng.standard_normal(n)
    )
    afp = np.clip(np.exp(np.log(120.0) + 0.9 * b + 1.9 * rng.standard_normal(n)), 1.0, 60000.0)
    return Phenotype(
        burden=b,
        size_cm=size,
        n_tumours=count,
        necrosis=necrosis,
        heterogeneity=heterogeneity,
        enhancement=enhancement,
        washout=washout,
        invasion=invasion,
        ecog=ecog,
        cirrhosis=cirrhosis,
        child_pugh_b=child_b,
        hbv=hbv,
        hbsag=hbsag,
        alt=np.round(np.exp(log_alt), 1),
        ast=np.round(np.exp(log_ast), 1),
        afp=np.round(afp, 1),
    )


def bclc_stage(invasion, ecog, multiple, size_cm) -> np.ndarray:
    """BCLC stage from its defining criteria (C: invasion/spread or ECOG >= 1)."""
    stage = np.where(np.asarray(multiple) | (np.asarray(size_cm) > 5.0), "B", "A")
    return np.where(np.asarray(invasion) | (np.asarray(ecog) >= 1), "C", stage)


def clinical_table(
    patients: list[str],
    phenotype: Phenotype,
    measured_size_cm: np.ndarray,
    measured_count: np.ndarray,
    bilobar: np.ndarray,
) -> pd.DataFrame:
    """The clinical.csv variables (raw values; categories as strings)."""
    yes_no = np.array(["no", "yes"])
    return pd.DataFrame(
        {
            "patient": patients,
            "ecog": phenotype.ecog.astype(str),
            "child_pugh": np.where(phenotype.child_pugh_b, "B", "A"),
            "tumour_number": measured_count.astype(int),
            "tumour_size_cm": np.round(measured_size_cm, 1),
            "bclc": bclc_stage(
                phenotype.invasion, phenotype.ecog, measured_count > 1, measured_size_cm
            ),
            "hbv": yes_no[phenotype.hbv.astype(int)],
            "cirrhosis": yes_no[phenotype.cirrhosis.astype(int)],
            "distribution": np.where(bilobar, "bilobar", "unilobar"),
            "afp": phenotype.afp,
            "alt": phenotype.alt,
            "ast": phenotype.ast,
            "hbsag": np.where(phenotype.hbsag, "positive", "negative"),
        }
    )
