"""Checkpoint converters: foreign weight files -> ferzoo backbone weights."""

from ferzoo.convert.tfjs import read_tfjs_weights

__all__ = ["read_tfjs_weights"]
