"""The tools a user runs: the CLI and what it drives.

`cli` (``bertcheck``), `verify` (a candidate checked and reported: ``bertcheck verify``,
`bertcheck.check_layer`, `bertcheck.check_model`), `baseline` (record and compare per-layer baselines
across releases), `walk` (the seed notebook as a report), `bench` (the suite against its floor) with
its two pytest plugins, `benchstats` and `planted`.

Imports: everything below it; nothing below imports a tool.
"""
