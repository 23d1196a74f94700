"""Flag storage: the FlagStore (compiled snapshot, versions, change feed, the evaluation facade)
over a source's documents (sidecar.sources)."""

from .cache_keys import eval_cache_key, flag_cache_key, request_hash, segment_cache_key
from .flag_document import DocumentLimits, parse_flag_document
from .flag_store import FlagSetChange, FlagStore, FlagView
from .last_known_good import LAST_KNOWN_GOOD_FILE, LastKnownGood
from .loading import compile_document, load_flag_file
from .source_health import SourceHealth, SourceStatus
from .versions import StateDirError, StateDirLockedError, VersionTable

__all__ = [
    "LAST_KNOWN_GOOD_FILE",
    "DocumentLimits",
    "FlagSetChange",
    "FlagStore",
    "FlagView",
    "LastKnownGood",
    "SourceHealth",
    "SourceStatus",
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
