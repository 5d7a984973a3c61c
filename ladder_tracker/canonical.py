"""The one canonical form of a JSON value and its sha256: what every stored hash is over.

Canonical JSON here is the value dumped with sorted keys, no whitespace (`,` and `:`
separators), non-ASCII characters as themselves (not `\\u` escapes), encoded as UTF-8.
Key order and spacing are not part of the value, so a dict read back from any database
(PostgreSQL's jsonb reorders keys) hashes the same as the one written.

Used by packet snapshots (`PacketSnapshot.sha256`), each imported evidence item's ServiceNow
snapshot (`Evidence.snapshot_sha256`), the per-item hashes a packet snapshot carries, the
backfill migration and `manage.py verify_snapshots`. Changing it would make every stored
hash a mismatch: don't.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any


def canonical_json(value: Any) -> bytes:
    """`value` in canonical form: sorted-key compact JSON, UTF-8."""
    text = json.dumps(value, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return text.encode("utf-8")


def canonical_sha256(value: Any) -> str:
    """The hex sha256 of `value`'s canonical form."""
    return hashlib.sha256(canonical_json(value)).hexdigest()


def snapshot_sha256(snapshot: dict | None) -> str | None:
    """An evidence item's snapshot hash: None when it has no snapshot (manual evidence)."""
    return canonical_sha256(snapshot) if snapshot else None
