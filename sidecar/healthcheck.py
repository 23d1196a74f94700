"""The container image's HEALTHCHECK: is the sidecar ready (`/readyz` answers 200)?

    python -m sidecar.healthcheck

The management address is resolved as `serve` resolves it (FLAG_SIDECAR_MANAGEMENT_LISTEN, the
FLAG_SIDECAR_CONFIG file, the default), so the check follows the configured port rather than a
port written into the Dockerfile. An address that binds every interface is asked on loopback.
Exit 0 when ready; 1 when not ready, unreachable, or when the management listener is off (then
there is nothing to ask).
"""

from __future__ import annotations

import argparse
import os
import sys
import urllib.error
import urllib.request
from collections.abc import Mapping

from sidecar.app import settings as app_settings
from sidecar.options import ConfigError

_ANY_ADDRESS = {"0.0.0.0": "127.0.0.1", "::": "::1", "": "127.0.0.1"}


def readyz_url(environ: Mapping[str, str]) -> str | None:
    """The /readyz URL for the management listener `serve` would bind, None when it is off.
    Raises ConfigError."""
    address = app_settings.load_settings(argparse.Namespace(), environ).management_listen
    if not address:
        return None
    host, _, port = address.rpartition(":")
    host = host.strip("[]")
    host = _ANY_ADDRESS.get(host, host)
    return f"http://{f'[{host}]' if ':' in host else host}:{port}/readyz"


def main(environ: Mapping[str, str] | None = None, timeout: float = 2.0) -> int:
    try:
        url = readyz_url(os.environ if environ is None else environ)
    except ConfigError as error:
        print(f"healthcheck: {error}", file=sys.stderr)
        return 1
    if url is None:
        print("healthcheck: the management listener is off (--management-listen off)", file=sys.stderr)
        return 1
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return 0 if response.status == 200 else 1
    except (urllib.error.URLError, OSError) as error:  # HTTPError (503 not ready) is a URLError
        print(f"healthcheck: {url}: {error}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
