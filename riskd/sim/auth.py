"""Who may call the simulator: the spec's two auth modes plus the stream's URL fallback.

- ``x-api-key: <key>`` (Single plan);
- HTTP Basic ``user:password`` (Pro plans);
- ``?api_key=<key>`` in the URL, accepted only where the caller passes the query (the stream).
"""

from __future__ import annotations

import base64
import binascii
import hmac
from collections.abc import Iterable, Mapping

DEFAULT_API_KEY = "sim-key"
DEFAULT_USERS: Mapping[str, str] = {"pro-user": "pro-pass"}


class Auth:
    """Accepted API keys and Basic users. Immutable after construction, so thread-safe."""

    def __init__(
        self,
        api_keys: Iterable[str] = (DEFAULT_API_KEY,),
        users: Mapping[str, str] | None = None,
    ) -> None:
        self.api_keys = tuple(api_keys)
        self.users = dict(DEFAULT_USERS if users is None else users)

    def allows(self, headers: Mapping[str, str], query: Mapping[str, str] | None = None) -> bool:
        """True when the headers (or, if given, the query's ``api_key``) carry valid credentials.

        ``headers`` must look names up case-insensitively (Starlette's ``Headers`` does).
        """
        key = headers.get("x-api-key")
        if key is not None:
            return self._key_ok(key)
        authorization = headers.get("authorization")
        if authorization is not None:
            return self._basic_ok(authorization)
        if query is not None and "api_key" in query:
            return self._key_ok(query["api_key"])
        return False

    def _key_ok(self, key: str) -> bool:
        # compare_digest on every key: no early exit that would time the match.
        ok = False
        for accepted in self.api_keys:
            ok |= hmac.compare_digest(key.encode(), accepted.encode())
        return ok

    def _basic_ok(self, authorization: str) -> bool:
        scheme, _, encoded = authorization.partition(" ")
        if scheme.lower() != "basic":
            return False
        try:
            decoded = base64.b64decode(encoded.strip(), validate=True).decode()
        except (binascii.Error, UnicodeDecodeError):
            return False
        user, sep, password = decoded.partition(":")
        if not sep:
            return False
        expected = self.users.get(user)
        return expected is not None and hmac.compare_digest(password.encode(), expected.encode())
