"""Codecs: one registered class each, uint8 (H, W, 3) image -> bytes -> uint8 (H, W, 3) image.

``base`` holds the interface and the registry (``CODECS``, ``build_codec``). The built-in codecs
register when their module is imported: ``classical`` (JPEG, WebP, AVIF, JPEG 2000, JPEG XL,
HEVC), ``learned`` (trained models) and ``sic`` (progressive SIC: one checkpoint, 16 levels; it
builds on ``learned``); each evaluate stage imports only the module of its kind, so that a change
to one kind of codec does not rerun the evaluations of another.
"""
