"""Figures for the report: rate-distortion curves (``rd``)."""
