"""The properties: each written once, run against HF's model or any candidate, and the failure each raises.

Every property is registered in `registry` (its kind, what it runs on, what an example costs), and
everything that runs properties (the pytest plugin, `verify`, the CLI, the benchmark) reaches them
through it. The properties themselves: HF's read-only ones from one hooked forward (`one_forward`),
those only HF's model can be asked (`hf_properties`), those of any layer or model candidate
(`layer_properties`, `model_properties`, with the metamorphic ones written once in `metamorphic`),
and every input form of the API (`input_forms`). `failures` is the report a property raises,
`outputs` names and compares a candidate's outputs, `worst` keeps the worst error each reached.

Imports: `bertcheck.spec`, `bertcheck.inputs`, `bertcheck.subjects` and itself. Add a property here
and in `registry`, its pytest item in the checkout's ``properties/``, and the mutant that must break
it in ``tests/mutants.py``.
"""
