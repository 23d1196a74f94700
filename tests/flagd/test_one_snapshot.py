"""A flagd resolve reads one flag set: the flag's type and metadata come from the set that
evaluates it, even when the set is replaced while the call runs."""

from google.protobuf.json_format import MessageToDict
from google.protobuf.struct_pb2 import Struct

from sidecar.server.flagd.mapping import BOOLEAN
from sidecar.server.flagd.service import FlagdResolver
from sidecar.sources import FileSource
from sidecar.store import FlagStore
from tests.conftest import write_flag_file


def flag_set(name: str, value: bool) -> dict:
    return {
        "flags": [
            {
                "key": "f",
                "enabled": True,
                "metadata": {"set": name},
                "variants": [{"key": name, "value": value}],
                "defaultVariantWhenOn": name,
            }
        ]
    }


class Flipping:
    """The store, replaced by the other flag set before every use (a reload at the worst moments)."""

    def __init__(self, store: FlagStore, path) -> None:
        self._store, self._path, self._next = store, path, "B"

    def __getattr__(self, name: str):
        write_flag_file(self._path, flag_set(self._next, self._next == "A"))
        assert self._store.reload()
        self._next = "B" if self._next == "A" else "A"
        return getattr(self._store, name)


def test_a_resolve_answers_from_one_flag_set(tmp_path):
    path = write_flag_file(tmp_path / "flags.yaml", flag_set("A", True))
    store = FlagStore(FileSource(path))
    store._reload(initial=True)
    resolver = FlagdResolver(Flipping(store, path))  # type: ignore[arg-type]
    for _ in range(4):
        answer = resolver.resolve("f", Struct(), None, BOOLEAN)  # type: ignore[arg-type]
        metadata = MessageToDict(answer.metadata)
        assert (answer.variant, answer.value) == (metadata["set"], metadata["set"] == "A"), answer


def test_resolve_all_answers_from_one_flag_set(tmp_path):
    from sidecar.server.flagd._generated import evaluation_v1

    path = write_flag_file(tmp_path / "flags.yaml", flag_set("A", True))
    store = FlagStore(FileSource(path))
    store._reload(initial=True)
    resolver = FlagdResolver(Flipping(store, path))  # type: ignore[arg-type]
    for _ in range(4):
        flag = resolver.resolve_all(Struct(), None, evaluation_v1.AnyFlag)["f"]  # type: ignore[arg-type]
        metadata = MessageToDict(flag.metadata)
        assert (flag.variant, flag.bool_value) == (metadata["set"], metadata["set"] == "A"), flag
