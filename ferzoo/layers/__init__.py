"""Reusable layers: per-sample tables, pixel normalisation, CAMs."""

from ferzoo.layers.apcl import APCL
from ferzoo.layers.average_expression_anchoring import (
    AverageExpressionAnchoring,
)
from ferzoo.layers.cam import FlipClassActivationMaps
from ferzoo.layers.channel_attention import ChannelAttention
from ferzoo.layers.cross_attention import DynamicChannelWeighting
from ferzoo.layers.cross_attention import DynamicWeightedCrossAttention
from ferzoo.layers.cross_attention import GatedCrossAttention
from ferzoo.layers.cross_attention import MultiScaleTokens
from ferzoo.layers.pixel_normalization import PixelNormalization
from ferzoo.layers.sample_table import SampleTable

__all__ = [
    "APCL",
    "AverageExpressionAnchoring",
    "ChannelAttention",
    "DynamicChannelWeighting",
    "DynamicWeightedCrossAttention",
    "FlipClassActivationMaps",
    "GatedCrossAttention",
    "MultiScaleTokens",
    "PixelNormalization",
    "SampleTable",
]
