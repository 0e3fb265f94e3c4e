"""Typed registries: one table per kind of extension (codecs, datasets, metrics, models).

Usage, as in CompressAI's ``compressai/registry``::

    CODECS = Registry("codec")

    @CODECS.register("jpeg")
    class JPEG(Codec): ...

    CODECS.get("jpeg")  # -> the class
"""

from __future__ import annotations

from typing import Callable, Dict, Generic, Iterator, TypeVar

T = TypeVar("T")


class Registry(Generic[T]):
    """A name -> object table. Registering a name twice raises ``ValueError``."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._table: Dict[str, T] = {}

    def register(self, name: str) -> Callable[[T], T]:
        """Decorator that registers its argument under ``name`` and returns it unchanged."""

        def deco(obj: T) -> T:
            if name in self._table:
                raise ValueError(f"{self.kind} {name!r} is already registered ({self._table[name]!r})")
            self._table[name] = obj
            return obj

        return deco

    def get(self, name: str) -> T:
        """Return the object registered as ``name``; ``KeyError`` lists the known names."""
        try:
            return self._table[name]
        except KeyError:
            raise KeyError(f"unknown {self.kind} {name!r}; known: {', '.join(sorted(self._table))}") from None

    def names(self) -> list:
        return sorted(self._table)

    def __contains__(self, name: object) -> bool:
        return name in self._table

    def __iter__(self) -> Iterator[str]:
        return iter(sorted(self._table))
