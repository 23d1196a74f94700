"""The selector of a sync stream: which flag set a subscriber follows.

`flag-set=NAME`, or empty for the set this sidecar serves. A sidecar serves one selection today
(DESIGN.md: "a sidecar or SDK serves one selection"), so a name other than its own is NOT_FOUND;
the fan-out keeps one publication per name, so serving several is a matter of feeding more.
"""

from __future__ import annotations

from typing import Final

DEFAULT_FLAG_SET: Final = "default"
FLAG_SET_KEY: Final = "flag-set"


class SelectorError(ValueError):
    """A selector that does not parse (the message says what the accepted forms are)."""


def parse_selector(text: str) -> str | None:
    """The flag-set name `text` selects, or None for "the one this sidecar serves"."""
    selector = text.strip()
    if not selector:
        return None
    key, equals, name = selector.partition("=")
    if not equals or key.strip() != FLAG_SET_KEY or not name.strip():
        raise SelectorError(
            f"selector {text!r} is not understood: use {FLAG_SET_KEY}=NAME (for example "
            f"{FLAG_SET_KEY}={DEFAULT_FLAG_SET}), or leave it empty for the set this sidecar serves"
        )
    return name.strip()
