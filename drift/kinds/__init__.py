"""Input kinds. Each one lives in its own module and honours the contract in kinds.base."""

from .base import FeatureSet, InputError, InputProblem, Kind
from .document import DocumentKind
from .image import ImageKind
from .payload import PayloadKind

KINDS: dict[str, Kind] = {kind.name: kind for kind in (ImageKind(), DocumentKind(), PayloadKind())}

__all__ = ["KINDS", "FeatureSet", "InputError", "InputProblem", "Kind"]
