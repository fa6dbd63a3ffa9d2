"""The reference store: good images per recipe and camera, versioned, on disk.

:class:`ReferenceStore` is the store (``_store``: its API; ``_manifest``: the
layout, manifests and versions; ``_files``: atomic writes and the lock);
:class:`InMemoryReferences` provides the same prepared references from images in
memory. Both satisfy :class:`edged.runtime.contracts.ReferenceProvider`.
"""

from edged.references._manifest import SCHEMA, ReferenceInfo, parse_version
from edged.references._memory import InMemoryReferences
from edged.references._store import MAX_IMAGES, ReferenceStore

__all__ = [
    "MAX_IMAGES",
    "SCHEMA",
    "InMemoryReferences",
    "ReferenceInfo",
    "ReferenceStore",
    "parse_version",
]
