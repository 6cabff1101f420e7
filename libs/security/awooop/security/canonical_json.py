"""RFC 8785 (JCS) canonical JSON and its SHA-256: the bytes that contracts sign and hash.

Two documents that are equal as JSON values give the same bytes, whatever the
key order or whitespace of the text they were read from: keys are sorted by
their UTF-16 code units, numbers are written as ECMAScript writes them (so
``1``, ``1.0`` and ``1e0`` are one number, ``1e21`` stays ``1e+21`` and
``0.000001`` stays ``0.000001``), strings are UTF-8 with minimal escaping, and
there is no whitespace. JCS works on I-JSON, so some Python values have no
canonical form; they raise :class:`NotCanonicalizable` rather than being coerced.
"""

from __future__ import annotations

import hashlib
from typing import Any

import rfc8785


class NotCanonicalizable(ValueError):
    """A document with no RFC 8785 form; the message says which value and why.

    Raised for a float that is NaN or infinite, an integer outside the exactly
    representable range of a double (beyond ±(2**53 - 1)), an object key that
    is not a string, a string holding a lone surrogate, or a value of a type
    JSON does not have (bytes, sets, datetimes, …).
    """


def canonical_json(document: Any) -> bytes:
    """The RFC 8785 canonical UTF-8 bytes of `document`.

    `document` is built of dicts with str keys, lists or tuples (both become
    arrays), str, int, float, bool and None. Raises :class:`NotCanonicalizable`
    for anything JCS cannot encode; nothing is converted silently.
    """
    try:
        return bytes(rfc8785.dumps(document))
    except rfc8785.CanonicalizationError as error:
        raise NotCanonicalizable(f"cannot encode as RFC 8785 canonical JSON: {error}") from error


def canonical_sha256(document: Any) -> str:
    """The SHA-256 of :func:`canonical_json` of `document`, as 64 lowercase hex digits.

    Raises :class:`NotCanonicalizable` as :func:`canonical_json` does.
    """
    return hashlib.sha256(canonical_json(document)).hexdigest()
