"""Flag storage: TTL-cached FlagStore in front of a repository (the watched flag file)."""

from .cache_keys import eval_cache_key, flag_cache_key, request_hash, segment_cache_key
from .file_repository import FileRepository, load_flag_file
from .flag_document import DocumentLimits, parse_flag_document
from .flag_store import FlagSetChange, FlagStore, Repository

__all__ = [
    "DocumentLimits",
    "FileRepository",
    "FlagSetChange",
    "FlagStore",
    "Repository",
    "eval_cache_key",
    "flag_cache_key",
    "load_flag_file",
    "parse_flag_document",
    "request_hash",
    "segment_cache_key",
]
