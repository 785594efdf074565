"""sigkit: CT deep-learning signatures and nomograms for survival studies, checked against R."""

from toolkit._version import __version__

__all__ = ["__version__"]
