"""AWS plumbing every stage shares: SQS batching, error translation, retry policy, stack outputs.

The lowest stage with the observe/ stage beside it: imports only `pipeline.config` and
`pipeline.failures`, never a stage of the flow, so any stage may use it.
"""
