"""Data sets: reading images as 8-bit RGB (``images``), fetching files by URL, mirror first and
verified (``download``), the data set sources (``sources``, one module each) and the data
directory they fill (``dataset.fetch_dataset``: ``images/``, ``manifest.csv``, ``skipped.csv``,
``references/``) from a ``datasets.<name>`` entry; ``python -m benchmark fetch`` is the DVC stage.

Nothing is imported here: a module that reads images (``benchmark.data.images``) must not
depend on every source.
"""
