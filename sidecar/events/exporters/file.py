"""The file exporter: one file per batch in a directory, as JSON lines, CSV or Parquet (bulk).

A batch is written to a hidden temporary file (`.<name>.tmp`) and then hard-linked to its final
name, which fails rather than replace an existing file, so a file is never overwritten and a
reader never sees a half-written one. Names are unique per batch:
`<prefix>-<UTC time to the millisecond>-<process token>-<batch number>.<ext>`.
"""

from __future__ import annotations

import io
import itertools
import os
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ..exporter import RetryableExportError
from ..feature_event import EVENT_FIELDS, Event, dump_bytes, dumps
from ..options import Options

FORMATS = {"jsonl": "jsonl", "json": "jsonl", "csv": "csv", "parquet": "parquet"}
# CSV and Parquet columns.
COLUMNS = EVENT_FIELDS
JSON_COLUMNS = frozenset({"value", "evaluationContext", "trackingEventDetails"})
PARQUET_CODECS = ("snappy", "zstd", "gzip", "none")


def _rows(events: Sequence[Event]) -> list[dict[str, Any]]:
    return [e.to_json() for e in events]


class FileExporter:
    """Writes every batch to a new file in `directory`."""

    is_bulk = True

    def __init__(
        self,
        directory: str | os.PathLike[str],
        fmt: str = "jsonl",
        prefix: str = "flag-events",
        compression: str = "snappy",
        fsync: bool = True,
    ) -> None:
        if fmt not in FORMATS:
            raise ValueError(f"unknown file format {fmt!r}; expected jsonl, csv or parquet")
        self.format = FORMATS[fmt]
        if self.format == "parquet":
            try:
                import pyarrow  # noqa: F401
            except ImportError:
                raise ValueError(
                    "the parquet format needs pyarrow: pip install 'flag-sidecar[parquet]'"
                ) from None
        if compression not in PARQUET_CODECS:
            raise ValueError(f"unknown compression {compression!r}; expected {', '.join(PARQUET_CODECS)}")
        if "/" in prefix or not prefix:
            raise ValueError(f"prefix {prefix!r} must be a plain, non-empty file name part")
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self.prefix = prefix
        self.compression = compression
        self.fsync = fsync
        self._token = os.urandom(4).hex()  # as secrets.token_hex(4)
        self._batches = itertools.count(1)
        self.files_written = 0

    @property
    def extension(self) -> str:
        return self.format

    def export(self, events: Sequence[Event]) -> None:
        if not events:
            return
        data = self._encode(events)
        try:
            self._publish(data)
        except OSError as exc:
            raise RetryableExportError(f"cannot write to {self.directory}: {exc}") from exc

    def _encode(self, events: Sequence[Event]) -> bytes:
        if self.format == "jsonl":
            return b"\n".join(map(dump_bytes, _rows(events))) + b"\n"
        if self.format == "csv":
            return self._csv(events)
        return self._parquet(events)

    def _csv(self, events: Sequence[Event]) -> bytes:
        import csv  # only with format=csv

        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(COLUMNS)
        for row in _rows(events):
            writer.writerow(_csv_cell(name, row) for name in COLUMNS)
        return out.getvalue().encode()

    def _parquet(self, events: Sequence[Event]) -> bytes:
        import pyarrow as pa
        import pyarrow.parquet as pq

        rows = _rows(events)
        columns: dict[str, list[Any]] = {name: [] for name in COLUMNS}
        for row in rows:
            for name in COLUMNS:
                value = row.get(name)
                if name in JSON_COLUMNS:
                    value = None if name not in row else dumps(value)
                columns[name].append(value)
        types = {"creationDate": pa.int64(), "default": pa.bool_()}
        schema = pa.schema([(name, types.get(name, pa.string())) for name in COLUMNS])
        table = pa.Table.from_pydict(columns, schema=schema)
        sink = pa.BufferOutputStream()
        pq.write_table(table, sink, compression=self.compression)
        return bytes(sink.getvalue().to_pybytes())

    def _publish(self, data: bytes) -> None:
        while True:
            now = time.time()
            stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime(now)) + f".{int(now * 1000) % 1000:03d}Z"
            name = f"{self.prefix}-{stamp}-{self._token}-{next(self._batches):06d}.{self.extension}"
            final = self.directory / name
            tmp = self.directory / f".{name}.tmp"
            with open(tmp, "wb") as f:
                f.write(data)
                f.flush()
                if self.fsync:
                    os.fsync(f.fileno())
            try:
                os.link(tmp, final)  # unlike rename, never replaces an existing file
            except FileExistsError:
                os.unlink(tmp)
                continue
            except OSError:
                if final.exists():  # a file system without hard links: check, then rename
                    os.unlink(tmp)
                    continue
                os.rename(tmp, final)
            else:
                os.unlink(tmp)
            self.files_written += 1
            return

    @classmethod
    def from_options(cls, options: Options) -> FileExporter:
        directory = options.required("dir")
        fmt = options.choice("format", FORMATS, "jsonl")
        prefix = options.string("prefix", "flag-events") or "flag-events"
        compression = options.choice("compression", PARQUET_CODECS, "snappy")
        fsync = options.boolean("fsync", True)
        try:
            return cls(directory, fmt, prefix, compression, fsync)
        except (ValueError, OSError) as exc:
            raise options.error(str(exc)) from None


def _csv_cell(name: str, row: dict[str, Any]) -> str:
    if name not in row:
        return ""
    value = row[name]
    if name in JSON_COLUMNS:
        return dumps(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)
