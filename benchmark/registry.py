"""Typed registries: one table per kind of extension (codecs, data set sources, metrics, models).

Usage, as in CompressAI's ``compressai/registry``::

    CODECS = Registry("codec")

    @CODECS.register("jpeg")
    class JPEG(Codec): ...

    CODECS.get("jpeg")  # -> the class

A registry holds what has been imported: the built-in entries register when their module is
imported (each stage imports the modules it needs), extensions from outside the package when
their module is named under ``plugins`` in params.yaml (imported by ``benchmark.config``).
"""

from __future__ import annotations

import difflib
from typing import Callable, Dict, Generic, Iterable, Iterator, List, TypeVar

from benchmark.errors import BenchmarkError

T = TypeVar("T")


class UnknownNameError(BenchmarkError, KeyError):
    """A name that is not in a registry (or a params section); the message lists the known
    names and the closest one."""


def unknown_name(kind: str, name: object, known: Iterable[str], where: str = "") -> UnknownNameError:
    """The error for ``name`` not among ``known``: ``"<where>: unknown <kind> 'x'; known: a, b
    (did you mean 'y'?)"``, the suggestion from ``difflib.get_close_matches``."""
    known = sorted(str(k) for k in known)
    close = difflib.get_close_matches(str(name), known, n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    prefix = f"{where}: " if where else ""
    return UnknownNameError(f"{prefix}unknown {kind} {name!r}; known: {', '.join(known) or 'none'}{hint}")


class Registry(Generic[T]):
    """A name -> object table. Registering a name twice raises ``ValueError``."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._table: Dict[str, T] = {}

    def register(self, name: str) -> Callable[[T], T]:
        """Decorator that registers its argument under ``name`` and returns it unchanged."""

        def deco(obj: T) -> T:
            self.add(name, obj)
            return obj

        return deco

    def add(self, name: str, obj: T) -> T:
        """Register ``obj`` under ``name``; ``ValueError`` if the name is taken."""
        if name in self._table:
            raise ValueError(f"{self.kind} {name!r} is already registered ({self._table[name]!r})")
        self._table[name] = obj
        return obj

    def remove(self, name: str) -> None:
        """Forget ``name`` (tests that register temporary entries clean up with it)."""
        self._table.pop(name, None)

    def get(self, name: str) -> T:
        """The object registered as ``name``. Raises ``UnknownNameError`` listing the known names."""
        try:
            return self._table[name]
        except KeyError:
            raise unknown_name(self.kind, name, self._table) from None

    def names(self) -> List[str]:
        """Registered names, in registration order."""
        return list(self._table)

    def values(self) -> List[T]:
        """Registered objects, in registration order."""
        return list(self._table.values())

    def __contains__(self, name: object) -> bool:
        return name in self._table

    def __iter__(self) -> Iterator[str]:
        return iter(list(self._table))
