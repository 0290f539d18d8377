"""A window's union JSON Schema, for people and for contract tests: genson does the inference.

The fingerprint sees rates; a schema sees only what may occur. Both are useful: the schema can be
diffed in a review or fed to a validator in the tool's own tests.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterable

import orjson


def union_schema(documents: Iterable[Any]) -> dict[str, Any]:
    from genson import SchemaBuilder

    builder = SchemaBuilder()
    for document in documents:
        builder.add_object(document)
    return builder.to_schema()


def union_schema_of_files(paths: Iterable[Path]) -> tuple[dict[str, Any], list[tuple[Path, str]]]:
    """The union schema of the JSON files that parse; the others are returned with the reason."""
    documents, skipped = [], []
    for path in paths:
        try:
            data = Path(path).read_bytes()
            documents.append(orjson.loads(data[3:] if data.startswith(b"\xef\xbb\xbf") else data))
        except (OSError, orjson.JSONDecodeError) as exc:
            skipped.append((Path(path), f"{type(exc).__name__}: {str(exc)[:200]}"))
    return union_schema(documents), skipped
