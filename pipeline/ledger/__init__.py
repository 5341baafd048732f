"""A run's life: its id, start from an S3 event, the DynamoDB ledger, progress, summary, finalize.

The ledger is what counts each chunk once. Imports parts/, manifest/ and the layers below; the
stages that do the work (split/, classify/, replay/) report into it.
"""
