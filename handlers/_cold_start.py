"""What every handler does once per execution environment, before its first event."""

from __future__ import annotations

from pipeline.config import Settings
from pipeline.observe import tracing
from pipeline.observe.tracing import xray_tracer


def cold_start(*required: str) -> Settings:
    """Read the settings, install the tracer they ask for, and check the `required` names.

    Raises:
        ConfigError: a required setting is missing (the function fails loudly at cold start).
    """
    settings = Settings.from_env()
    tracing.configure(xray_tracer(is_enabled=settings.is_tracing_enabled))
    settings.require(*required)
    return settings
