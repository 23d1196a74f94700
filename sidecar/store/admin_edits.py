"""The edits the admin API makes to one flag or segment, on its document (the flag file's shape:
plain JSON values). Each takes the current document and returns the new one, leaving the old one
as it was; what the result means (references, types, percentages) is checked afterwards, with the
whole set, by the flag file's validator (admin.py).

A rule is named as the validator names it: by its id, or by its index when it has none.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Mapping
from typing import Any

from .admin_errors import NotFoundError

Document = dict[str, Any]
Edit = Callable[[Document], Document]

# The fields UpdateFlag / UpdateSegment may set, by their document names.
FLAG_FIELDS = (
    "name",
    "description",
    "enabled",
    "defaultVariantWhenOn",
    "defaultVariantWhenOff",
    "trackEvents",
    "metadata",
)
SEGMENT_FIELDS = ("name", "description")


def set_fields(changes: Mapping[str, Any], allowed: tuple[str, ...]) -> Edit:
    """Set the given fields; a value of None removes the field (back to its default)."""

    def edit(document: Document) -> Document:
        changed = copy.deepcopy(document)
        for name, value in changes.items():
            if name not in allowed:
                raise ValueError(f"{name} is not an editable field")
            if value is None:
                changed.pop(name, None)
            else:
                changed[name] = value
        return changed

    return edit


def _variant_index(document: Document, key: str, flag: str) -> int:
    for index, variant in enumerate(document.get("variants") or ()):
        if isinstance(variant, Mapping) and variant.get("key") == key:
            return index
    raise NotFoundError(f"flag {flag!r} has no variant {key!r}")


def add_variant(variant: Document) -> Edit:
    def edit(document: Document) -> Document:
        changed = copy.deepcopy(document)
        changed.setdefault("variants", []).append(variant)
        return changed

    return edit


def update_variant(key: str, changes: Mapping[str, Any]) -> Edit:
    """Set the variant's description and/or value (None: left as it is; "" clears a description)."""

    def edit(document: Document) -> Document:
        changed = copy.deepcopy(document)
        variant = changed["variants"][_variant_index(changed, key, changed.get("key", ""))]
        for name, value in changes.items():
            if value is None:
                continue
            if name == "description" and value == "":
                variant.pop(name, None)
            else:
                variant[name] = value
        return changed

    return edit


def delete_variant(key: str) -> Edit:
    """Remove the variant (rules or defaults that still name it make the validator refuse)."""

    def edit(document: Document) -> Document:
        changed = copy.deepcopy(document)
        del changed["variants"][_variant_index(changed, key, changed.get("key", ""))]
        return changed

    return edit


def rule_index(document: Mapping[str, Any], rule: str, owner: str) -> int:
    """The index of the rule named `rule` (its id, or its index when it has no id)."""
    rules = document.get("rules") or []
    for index, entry in enumerate(rules):
        name = entry.get("id") if isinstance(entry, Mapping) else None
        if (name or str(index)) == rule:
            return index
    raise NotFoundError(f"{owner} has no rule {rule!r} (rules are named by id, or by index without one)")


def add_rule(rule: Document, index: int | None = None) -> Edit:
    """Insert the rule at `index` (None or past the end: append)."""

    def edit(document: Document) -> Document:
        changed = copy.deepcopy(document)
        rules = changed.setdefault("rules", [])
        rules.insert(len(rules) if index is None else index, rule)
        return changed

    return edit


def replace_rule(name: str, rule: Document, owner: str) -> Edit:
    """Replace the rule's constraints and distributions (flaggio's UpdateFlagRule: wholesale); the
    rule keeps its id unless the new one names another."""

    def edit(document: Document) -> Document:
        changed = copy.deepcopy(document)
        index = rule_index(changed, name, owner)
        old = changed["rules"][index]
        new = dict(rule)
        if "id" not in new and isinstance(old, Mapping) and old.get("id"):
            new["id"] = old["id"]
        changed["rules"][index] = new
        return changed

    return edit


def delete_rule(name: str, owner: str) -> Edit:
    def edit(document: Document) -> Document:
        changed = copy.deepcopy(document)
        del changed["rules"][rule_index(changed, name, owner)]
        if not changed["rules"]:
            del changed["rules"]
        return changed

    return edit
