"""Trained models in formats other tools read: ``vaekit export RUN --format onnx`` (:mod:`vaekit.export.onnx`)."""
from __future__ import annotations

FORMATS = ("onnx",)
