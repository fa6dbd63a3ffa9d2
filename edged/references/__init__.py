"""The reference store: good images per recipe and camera, versioned, on disk."""

from edged.references._store import (
    MAX_IMAGES,
    SCHEMA,
    InMemoryReferences,
    ReferenceInfo,
    ReferenceStore,
    parse_version,
)

__all__ = [
    "MAX_IMAGES",
    "SCHEMA",
    "InMemoryReferences",
    "ReferenceInfo",
    "ReferenceStore",
    "parse_version",
]
