"""Frozen dataclasses that are quick to build: a flag set's load builds them by the ten thousand."""

from __future__ import annotations

import dataclasses
from typing import Any, TypeVar

T = TypeVar("T")

_NO_VALUE: Any = object()  # a field with a default_factory, not given


def quick_init(cls: type[T]) -> type[T]:
    """Give a frozen, slotted dataclass an __init__ that sets each slot through its descriptor.

    The dataclass's own __init__ for a frozen class goes through object.__setattr__ by name for
    every field, the larger part of building an Evaluation or a FlagDefinition (bench/notes.md,
    "Building frozen dataclasses"). Same signature, same defaults; the class stays frozen to
    everything after __init__.
    """
    fields = dataclasses.fields(cls)  # type: ignore[arg-type]
    if hasattr(cls, "__post_init__") or not hasattr(cls, "__slots__"):
        raise TypeError(f"{cls.__name__}: quick_init is for slotted dataclasses without __post_init__")
    namespace: dict[str, Any] = {"_NO_VALUE": _NO_VALUE}
    parameters, body = [], []
    for index, field in enumerate(fields):
        if not field.init or field.kw_only:
            raise TypeError(f"{cls.__name__}.{field.name}: quick_init takes plain fields only")
        namespace[f"_set{index}"] = cls.__dict__[field.name].__set__
        name = field.name
        if field.default is not dataclasses.MISSING:
            namespace[f"_default{index}"] = field.default
            parameters.append(f"{name}=_default{index}")
        elif field.default_factory is not dataclasses.MISSING:
            namespace[f"_factory{index}"] = field.default_factory
            parameters.append(f"{name}=_NO_VALUE")
            body.append(f"    if {name} is _NO_VALUE: {name} = _factory{index}()")
        else:
            parameters.append(name)
        body.append(f"    _set{index}(self, {name})")
    source = f"def __init__(self, {', '.join(parameters)}):\n" + "\n".join(body or ["    pass"]) + "\n"
    exec(source, namespace)  # built from the class's own field names, as dataclasses does
    init = namespace["__init__"]
    init.__qualname__ = f"{cls.__qualname__}.__init__"
    init.__module__ = cls.__module__
    cls.__init__ = init  # type: ignore[method-assign]
    return cls
