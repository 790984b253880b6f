"""cdb: Class-wise Difficulty-Balanced loss (Sinha, Ohashi, Nakamura, ACCV 2020) and the experiments around it."""

__version__ = "0.1.0"
