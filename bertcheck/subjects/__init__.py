"""What is checked: a model loaded and audited, its hooked forward, and the candidates held to the protocol.

Model names and loading (`models`), ids for a family member without a tokenizer of its own
(`tokenizers`), refusing a checkpoint that would not be checked (`audit`), a loaded
BERT with its dtype and device copies (`subject`), one hooked forward that records every activation
(`capture`), the reimplementation protocol (`candidate`) with what a factory declares it runs
(`capabilities`) and its outputs from any array type (`arrays`), a process's memory (`memory`), and
what differs between transformers releases (`_compat`).

Imports: `bertcheck.spec`, `bertcheck.inputs` and itself.
"""
