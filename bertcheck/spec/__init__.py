"""The spec: what BERT computes and how close counts as equal.

The activation vocabulary every other part speaks (`names`), the BERT family and what each member
computes differently (`family`), BERT from scratch in plain torch ops (`reference`), the dtype-keyed
tolerance table (`tolerances`), comparison over real tokens (`compare`), the half-precision rule
(`low_precision`) and the catalogue of known deviations from BERT, each a variant of the reference
(`deviations`).

Imports: torch and itself, nothing else of bertcheck. Every layer above reads the spec; the spec reads
no model under test, no input strategy and no pytest.
"""
