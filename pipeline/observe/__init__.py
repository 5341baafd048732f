"""Seeing a run: X-Ray spans behind one module, finding a run's traces, prices and cost estimates.

Beside aws/ at the bottom: imports only `pipeline.config` and `pipeline.failures`, so every
stage can open a span or price its work without a cycle.
"""
