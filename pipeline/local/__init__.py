"""The embedded local AWS stack: moto's server, resources from template.yaml, Lambda stand-ins.

Used by `lambdaflow up/run/demo` and by the integration and end-to-end tests; AWS never sees it.
"""
