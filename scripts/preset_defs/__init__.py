"""Preset definitions: one module per method, each with `PRESETS`."""
