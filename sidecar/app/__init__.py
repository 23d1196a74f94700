"""The composition root: the process's settings (settings.py) and its runtime (runtime.py), the
only modules that know every layer. No layer imports them (the import contracts in pyproject.toml)."""


def plural(count: int, noun: str) -> str:
    """`1 flag`, `2 flags`: the counts in what the commands and the runtime print."""
    return f"{count} {noun}{'' if count == 1 else 's'}"
