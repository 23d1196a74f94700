"""The selector of a sync stream: which flag set a subscriber follows.

`flag-set=NAME`, or empty for the set this sidecar serves: the grammar of the `--selector` option
(sources.remote_options), read here with the wire's one addition, the empty selector. A sidecar
serves one selection today (DESIGN.md: "a sidecar or SDK serves one selection"), so a name other
than its own is NOT_FOUND; the fan-out keeps one publication per name, so serving several is a
matter of feeding more.
"""

from __future__ import annotations

from sidecar.sources.remote_options import DEFAULT_FLAG_SET, SELECTOR_KEY, selected_flag_set
from sidecar.sources.remote_options import parse_selector as parse_selector_option

__all__ = ["DEFAULT_FLAG_SET", "SELECTOR_KEY", "SelectorError", "parse_selector"]


class SelectorError(ValueError):
    """A selector that does not parse (the message says what the accepted forms are)."""


def parse_selector(text: str) -> str | None:
    """The flag-set name `text` selects, or None for "the one this sidecar serves"."""
    if not text.strip():
        return None
    try:
        return selected_flag_set(parse_selector_option(text))
    except ValueError as error:
        raise SelectorError(
            f"selector {text!r} is not understood: {error}, or leave it empty for the set this sidecar serves"
        ) from None
