"""Thin Lambda adapters: parse the event, call the core, shape the response."""
