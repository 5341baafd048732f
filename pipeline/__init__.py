"""lambdaflow's core: manifests in, labels and failure records out.

The core knows nothing of Lambda or of the local runner; `handlers/` adapts events to it and
`pipeline.local` stands the AWS services up on one machine.
"""

__version__ = "0.1.0"
