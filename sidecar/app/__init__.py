"""The composition root: the process's settings (settings.py) and its runtime (runtime.py), the
only modules that know every layer. No layer imports them (the import contracts in pyproject.toml)."""
