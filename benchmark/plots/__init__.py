"""Figures for the report: rate-distortion curves (``rd``) and rate-distortion-perception
figures (``rdp``)."""
