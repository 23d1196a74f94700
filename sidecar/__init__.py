"""flag-sidecar: a feature-flag evaluation sidecar (gRPC on localhost)."""


def package_version() -> str:
    """The installed package's version. importlib.metadata is imported here, when asked: it is a
    slow import, and scanning the installed distributions slower, for a start that never needs it."""
    from importlib import metadata

    try:
        return metadata.version("flag-sidecar")
    except metadata.PackageNotFoundError:  # running from a source tree that was never installed
        return "unknown (not installed)"
