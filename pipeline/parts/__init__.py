"""The product in S3: where a run's result and failure parts live, writing them, reading them back.

Users read `results/<run>/` and `failures/<run>/` with their own query engines, so this layout is
a contract. Imports manifest/ and the layers below; Split, the worker and replay write through it.
"""
