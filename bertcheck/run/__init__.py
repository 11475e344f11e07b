"""Running many: one run split over machines, which worker takes which items, the shared example database.

`split` (a run's part, balanced by the measured ``durations.json``), `scheduling` (one worker per
group of items that share a forward) and `database` (Hypothesis's examples shared over Redis).

Imports: the layers below it. The pytest plugin (`bertcheck.plugin`) wires these into pytest.
"""
