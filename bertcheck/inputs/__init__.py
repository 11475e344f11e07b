"""What is fed: the generated examples, the Hypothesis strategies that draw them, and what a draw covers.

The example types (`cases`), the input classes each property draws by construction (`coverage`),
Hypothesis strategies (`strategies`), the devices a machine has and the device guard (`devices`), a
property's examples as items (`shards`) and the Hypothesis profiles (`profiles`).

Imports: `bertcheck.spec` and itself. Nothing here loads a model.
"""
