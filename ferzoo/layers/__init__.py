"""Reusable layers: per-sample tables, pixel normalisation, CAMs."""

from ferzoo.layers.pixel_normalization import PixelNormalization
from ferzoo.layers.sample_table import SampleTable

__all__ = ["PixelNormalization", "SampleTable"]
