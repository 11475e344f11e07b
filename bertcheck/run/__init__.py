"""How a pytest run of bertcheck runs: whether it asks for bertcheck, its seeds, its part of a split,
which worker takes which items, the shared example database, and what the workers hand back.

`asking` (whether a run asks for bertcheck and what it names), `seeds` (each item's seed: `Run`),
`split` (a run's part, balanced by the measured ``durations.json``, and the timings that measure it),
`scheduling` (one worker per group of items that share a forward), `database` (Hypothesis's examples
shared over Redis) and `gathering` (each worker's worst errors and input classes, added up).

Imports: the layers below it. The pytest plugin (`bertcheck.plugin`) wires these into pytest's hooks.
"""
