"""The one base class of the benchmark's own errors.

Every error that means "the input is wrong" (a params key, an image, a download, a results
file, a bitstream, a checkpoint) is a :class:`BenchmarkError`, raised with a message that names
the file or key and what is wrong. The command line (``python -m benchmark``) prints such an
error as one line and exits with status 2; any other exception is a bug and keeps its traceback.
Each module defines its own subclasses (``ConfigError`` in ``benchmark.config``, ``CodecError``
in ``benchmark.codecs.base``, ...), usually also deriving from the built-in type that fits
(``ValueError``, ``RuntimeError``, ``LookupError``) so that callers may catch either.
"""

from __future__ import annotations


class BenchmarkError(Exception):
    """Base class of the benchmark's input errors; ``str(e)`` is the one-line message."""

    def __str__(self) -> str:  # KeyError-like subclasses would otherwise print quotes
        return str(self.args[0]) if self.args else self.__class__.__name__
