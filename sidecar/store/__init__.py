"""Flag storage: the FlagStore (compiled snapshot, versions, change feed, the evaluation facade)
over a source's documents (sidecar.sources)."""

from .cache_keys import eval_cache_key, flag_cache_key, request_hash, segment_cache_key
from .flag_document import DocumentLimits, parse_flag_document
from .flag_store import FlagSetChange, FlagStore, FlagView
from .loading import compile_document, load_flag_file
from .versions import StateDirError, StateDirLockedError, VersionTable

__all__ = [
    "DocumentLimits",
    "FlagSetChange",
    "FlagStore",
    "FlagView",
    "StateDirError",
    "StateDirLockedError",
    "VersionTable",
    "compile_document",
    "eval_cache_key",
    "flag_cache_key",
    "load_flag_file",
    "parse_flag_document",
    "request_hash",
    "segment_cache_key",
]
