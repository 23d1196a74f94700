"""Who may call the admin API: a bearer token from a file, and/or the client certificate of a
mutual-TLS admin listener. The identity found is what the history records as "who".

The token file holds one token per line, alone (its identity is `token`) or after a name and a
space (`alice 3f9c...`: its identity is `token:alice`); blank lines and `#` comments are skipped.
A token is compared with hmac.compare_digest against every token of the file, so the time taken
says nothing about how much of it was right. A call that presents a token must present a good one,
whatever its certificate; without a token, a verified client certificate (mutual TLS) identifies
the caller as `cert:<common name>`.
"""

from __future__ import annotations

import hmac
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import grpc

from .edge import Unauthenticated

_BEARER = "bearer "


class AdminAccess:
    def __init__(self, tokens: Mapping[str, str] | None = None, client_certificates: bool = False) -> None:
        """`tokens`: token -> identity. `client_certificates`: the listener verifies client
        certificates (mutual TLS), so a certificate's common name identifies its caller."""
        self._tokens = [(token.encode(), identity) for token, identity in (tokens or {}).items()]
        self._client_certificates = client_certificates

    @classmethod
    def from_files(cls, token_file: Path | None, client_certificates: bool) -> AdminAccess:
        """Read the token file (OSError naming it; ValueError for a file with no token)."""
        tokens: dict[str, str] = {}
        if token_file is not None:
            try:
                text = token_file.read_text("utf-8")
            except (OSError, UnicodeDecodeError) as error:
                raise OSError(f"cannot read admin token file {token_file}: {error}") from None
            for line in text.splitlines():
                line = line.strip()
                if not line or line.startswith("#"):
                    continue
                name, _, token = line.rpartition(" ")
                tokens[token] = f"token:{name.strip()}" if name.strip() else "token"
            if not tokens:
                raise ValueError(f"admin token file {token_file} holds no token")
        return cls(tokens, client_certificates)

    def identify(self, context: grpc.ServicerContext) -> str:
        """The caller's identity; Unauthenticated when it has none we accept."""
        header = next(
            (str(value) for key, value in context.invocation_metadata() if key == "authorization"), None
        )
        if header is not None:
            if not header.lower().startswith(_BEARER):
                raise Unauthenticated("the authorization header must be `Bearer <token>`")
            presented = header[len(_BEARER) :].strip().encode()
            found = None
            for token, identity in self._tokens:  # every one compared: no early exit on a match
                if hmac.compare_digest(presented, token):
                    found = identity
            if found is None:
                raise Unauthenticated("the bearer token is not one of the admin tokens")
            return found
        if self._client_certificates:
            names: Any = context.auth_context().get("x509_common_name") or []
            if names:
                return f"cert:{bytes(names[0]).decode(errors='replace')}"
        raise Unauthenticated(
            "the admin API needs authentication: an `authorization: Bearer <token>` header"
            + (" or a client certificate" if self._client_certificates else "")
        )
