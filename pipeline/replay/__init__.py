"""Failed items and WorkDLQ chunks back into the flow, counted once across rounds.

Imports split/ (to send chunks), ledger/, parts/ and the layers below; never classify/, its
sibling: a replay chunk is an ordinary chunk message the worker already reads.
"""
