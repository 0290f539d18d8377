"""Input kinds. Each one lives in its own module and honours the contract in kinds.base.

The kinds load when `KINDS` is first used: a worker process imports only the module of the kind it
opens (drift.features.isolation), not the others' decoders and encoders.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .base import FeatureSet, InputError, InputProblem, Kind

if TYPE_CHECKING:
    KINDS: dict[str, Kind]


def __getattr__(name: str):
    if name == "KINDS":
        from .document import DocumentKind
        from .image import ImageKind
        from .payload import PayloadKind

        kinds = {kind.name: kind for kind in (ImageKind(), DocumentKind(), PayloadKind())}
        globals()["KINDS"] = kinds
        return kinds
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["KINDS", "FeatureSet", "InputError", "InputProblem", "Kind"]
