"""`KIND[:key=value,...]` exporter specs, as given to `--exporter`, and typed access to their options."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

# A comma separates options only when `key=` follows it directly (no space); `\,` is always a
# literal comma. So a log template may contain ", flag={key}".
_SPLIT = re.compile(r"(?<!\\),(?=[A-Za-z_][A-Za-z0-9_.-]*=)")
_KIND = re.compile(r"^[a-z][a-z0-9_-]*$")


class SpecError(ValueError):
    """An exporter spec that cannot be used; the message says why."""


@dataclass(frozen=True, slots=True)
class ExporterSpec:
    kind: str
    options: Mapping[str, str] = field(default_factory=dict)
    text: str = ""

    def __str__(self) -> str:
        return self.text or self.kind


def parse_exporter_spec(text: str) -> ExporterSpec:
    """`file:dir=/var/events,format=jsonl` -> ExporterSpec("file", {"dir": ..., "format": ...})."""
    kind, _, rest = text.strip().partition(":")
    kind = kind.strip().lower()
    if not _KIND.match(kind):
        raise SpecError(f"exporter {text!r}: expected KIND[:key=value,...], e.g. file:dir=/var/events")
    options: dict[str, str] = {}
    if rest.strip():
        for part in _SPLIT.split(rest):
            key, sep, value = part.partition("=")
            key = key.strip()
            if not sep or not key:
                raise SpecError(f"exporter {text!r}: {part!r} is not key=value")
            if key in options:
                raise SpecError(f"exporter {text!r}: option {key!r} given twice")
            options[key] = value.replace("\\,", ",")
    return ExporterSpec(kind, options, text)


class Options:
    """Reads an exporter's options by type; `finish()` rejects the ones nobody asked for."""

    def __init__(self, spec: ExporterSpec) -> None:
        self.spec = spec
        self._left = dict(spec.options)
        self._known: list[str] = []

    def _take(self, key: str) -> str | None:
        self._known.append(key)
        return self._left.pop(key, None)

    def error(self, message: str) -> SpecError:
        return SpecError(f"exporter {self.spec}: {message}")

    def string(self, key: str, default: str | None = None) -> str | None:
        value = self._take(key)
        return default if value is None else value

    def required(self, key: str) -> str:
        value = self._take(key)
        if not value:
            raise self.error(f"option {key!r} is required")
        return value

    def choice(self, key: str, choices: Iterable[str], default: str) -> str:
        allowed = list(choices)
        value = self._take(key)
        if value is None:
            return default
        if value.lower() not in allowed:
            raise self.error(f"{key}={value!r}: expected one of {', '.join(allowed)}")
        return value.lower()

    def real(self, key: str, default: float, minimum: float = 0.0) -> float:
        value = self._take(key)
        if value is None:
            return default
        try:
            number = float(value)
        except ValueError:
            raise self.error(f"{key}={value!r} is not a number") from None
        if not number >= minimum:
            raise self.error(f"{key}={value!r} must be at least {minimum}")
        return number

    def integer(self, key: str, default: int, minimum: int = 0) -> int:
        value = self._take(key)
        if value is None:
            return default
        try:
            number = int(value)
        except ValueError:
            raise self.error(f"{key}={value!r} is not a whole number") from None
        if number < minimum:
            raise self.error(f"{key}={value!r} must be at least {minimum}")
        return number

    def boolean(self, key: str, default: bool) -> bool:
        value = self._take(key)
        if value is None:
            return default
        lowered = value.strip().lower()
        if lowered in ("1", "true", "yes", "on"):
            return True
        if lowered in ("0", "false", "no", "off"):
            return False
        raise self.error(f"{key}={value!r}: expected true or false")

    def pairs(self, key: str) -> dict[str, str]:
        """`name:value;name2:value2` -> {"name": "value", ...}."""
        value = self._take(key)
        result: dict[str, str] = {}
        if not value:
            return result
        for item in value.split(";"):
            if not item.strip():
                continue
            name, sep, val = item.partition(":")
            if not sep or not name.strip():
                raise self.error(f"{key}: {item!r} is not name:value")
            result[name.strip()] = val.strip()
        return result

    def finish(self) -> None:
        if self._left:
            unknown = ", ".join(sorted(self._left))
            known = ", ".join(sorted(set(self._known)))
            raise self.error(f"unknown option(s) {unknown}; {self.spec.kind} accepts {known}")
