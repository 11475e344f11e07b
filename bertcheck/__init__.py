"""bertcheck: property-based verification of the BERT encoder against its architecture.

The pieces, each in its own module: `names` (the activation vocabulary), `reference` (BERT from
scratch), `capture` (one hooked HF forward), `checks` (the invariants), `strategies` (Hypothesis
inputs), `tolerances` (one dtype-keyed table), `models` and `subject` (what is checked), `plugin`
(pytest), `cli` (one-command reproduction).
"""

__version__ = "0.1.0"
