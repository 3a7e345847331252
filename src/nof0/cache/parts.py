"""What may stand inside a Redis key name: the one check of every placeholder value (ids, the prefix).

Its own module, importing nothing of nof0, so both ``cache.keys`` (which builds keys) and ``config``
(which checks ``redis.prefix`` when the configuration loads) use it without importing each other.
"""

from __future__ import annotations

import re

__all__ = ["InvalidKeyPart", "validate_part", "KEY_PART"]

# Ids end up inside key names: letters, digits and . _ - @ / only, 1-64 characters, and never a
# character Redis glob patterns or cluster hash tags give meaning to (* ? [ ] { } space newline :).
KEY_PART = re.compile(r"[A-Za-z0-9._@/-]{1,64}")


class InvalidKeyPart(ValueError):
    """A key placeholder value that is not safe inside a Redis key."""


def validate_part(field: str, value: object) -> str:
    if not isinstance(value, str):
        raise InvalidKeyPart(f"{field} must be a string, got {type(value).__name__} {value!r}")
    if not KEY_PART.fullmatch(value):
        why = "is empty" if not value else ("is longer than 64 characters" if len(value) > 64 else
                                            "may contain only letters, digits and . _ - @ /")
        raise InvalidKeyPart(f"{field} {value!r} {why}")
    return value
