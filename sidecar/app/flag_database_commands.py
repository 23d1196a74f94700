"""`flag-sidecar migrate` and `flag-sidecar flags import|export|convert`: flag sets from the command
line. Import and export move a whole flag set between a file and a database, in one transaction
each way; `--dry-run` prints what an import would change and writes nothing. Convert writes a
checked flag file out again, normalised, in either format (a large YAML set starts faster as JSON).
Each reads a file as `validate` does (`load_checked`)."""

from __future__ import annotations

import argparse
import getpass
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sidecar.app import plural
from sidecar.engine import FlagSet, FlagSetError, flag_set_document
from sidecar.sources import DEFAULT_FLAG_SET, JSON, SourceURIError, format_of_name, open_database
from sidecar.sources.settings import SELECTOR_KEY, parse_selector, selected_flag_set
from sidecar.store import load_flag_file

if TYPE_CHECKING:  # the admin layer and PyYAML load when a command runs: `serve` only builds the parser
    from sidecar.store.admin import FlagAdmin, SetDiff

_SOURCE_HELP = "the flag database, e.g. sqlite:///var/lib/flag-sidecar/flags.db"


def add_commands(commands: Any, parser_class: type[argparse.ArgumentParser]) -> dict[str, Any]:
    """Add `migrate` and `flags` to the subcommands; returns them by name."""
    migrate = commands.add_parser(
        "migrate",
        help="bring a flag database's schema up to date",
        description="Apply the schema migrations a flag database does not have yet (serve does it at start).",
    )
    migrate.add_argument("--source", required=True, metavar="URI", help=_SOURCE_HELP)

    flags = commands.add_parser(
        "flags",
        help="import, export or convert a flag set",
        description="Move a flag set between a file and a database, or write a flag file in another format.",
    )
    actions = flags.add_subparsers(dest="flags_command", required=True, metavar="ACTION")
    imported = actions.add_parser(
        "import",
        help="make a database's flag set exactly what a flag file says (one transaction)",
        description="Validate FILE as `validate` does, then replace the flag set with it in one "
        "transaction: flags and segments added, updated (new versions) and removed. Versions written "
        "in the file are not kept: the database counts them.",
    )
    imported.add_argument("file", type=Path, metavar="FILE", help="flag file (YAML or JSON)")
    _database_arguments(imported)
    imported.add_argument("--dry-run", action="store_true", help="print what would change; write nothing")
    imported.add_argument(
        "--actor", default=None, metavar="NAME", help="who the history records (default: cli:<user name>)"
    )
    exported = actions.add_parser(
        "export",
        help="write a database's flag set as a flag file",
        description="Write the flag set as a flag file (normalised, without versions).",
    )
    _database_arguments(exported)
    _output_arguments(exported)
    converted = actions.add_parser(
        "convert",
        help="write a flag file again, checked and normalised, in either format",
        description="Check FILE as `validate` does, then write its flags and segments as `flags export` "
        "writes a set (normalised; versions written in FILE are kept): `-o flags.json` turns a YAML "
        "file into JSON, which a large set starts from several times faster (--compact: on one "
        "line). Nothing is written if FILE has a problem.",
    )
    converted.add_argument("file", type=Path, metavar="FILE", help="flag file (YAML or JSON)")
    _output_arguments(converted)
    return {"migrate": migrate, "flags": flags}


def _database_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--source", required=True, metavar="URI", help=_SOURCE_HELP)
    parser.add_argument(
        "--selector",
        default=f"{SELECTOR_KEY}={DEFAULT_FLAG_SET}",
        type=_argument(parse_selector),
        metavar=f"{SELECTOR_KEY}=NAME",
        help=f"the flag set (default: {SELECTOR_KEY}={DEFAULT_FLAG_SET})",
    )


def _output_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--output", "-o", type=Path, default=None, metavar="FILE", help="default: stdout")
    parser.add_argument(
        "--format", choices=("yaml", "json"), default=None, help="default: by --output's suffix, else YAML"
    )
    parser.add_argument(
        "--compact",
        action="store_true",
        help="JSON on one line, without spaces: about the size of the same set in YAML, where "
        "indented JSON is about twice that (a Kubernetes ConfigMap holds at most 1 MiB)",
    )


def _argument(parse: Callable[[str], str]) -> Callable[[str], str]:
    def checked(text: str) -> str:
        try:
            return parse(text)
        except ValueError as error:
            raise argparse.ArgumentTypeError(str(error)) from None

    return checked


def run(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    output_format = ""  # what export and convert write: settled before anything is opened
    if args.command == "flags" and args.flags_command in ("export", "convert"):
        try:
            output_format = _output_format(args)
        except ValueError as error:
            parser.error(str(error))
    if args.command == "flags" and args.flags_command == "convert":
        return _convert(args, output_format)
    try:
        database = open_database(args.source)
    except SourceURIError as error:
        parser.error(str(error))
    from sidecar.store.admin import FlagAdmin

    admin = FlagAdmin(database)
    try:
        admin.start()
        if args.command == "migrate":
            print(f"{database.origin}: schema up to date")
            return 0
        flag_set = selected_flag_set(args.selector)
        if args.flags_command == "import":
            return _import(admin, flag_set, args)
        return _export(admin, flag_set, args, output_format)
    except (OSError, RuntimeError) as error:
        print(f"flag-sidecar {args.command}: {error}", file=sys.stderr)
        return 1
    finally:
        admin.close()


def load_checked(path: Path, refused: str) -> FlagSet | None:
    """The flag file at `path`, or None once every problem is printed (one a line, then
    "PATH: N problems, <refused>" on stderr) or the file could not be read."""
    try:
        return load_flag_file(path)
    except FlagSetError as error:
        for problem in error.problems:
            print(problem)
        print(f"{path}: {plural(len(error.problems), 'problem')}, {refused}", file=sys.stderr)
    except OSError as error:
        print(f"{path}: cannot read: {error.strerror or error}", file=sys.stderr)
    return None


def _import(admin: FlagAdmin, flag_set: str, args: argparse.Namespace) -> int:
    loaded = load_checked(args.file, "nothing imported")
    if loaded is None:
        return 1
    assert loaded.definitions is not None
    actor = args.actor or f"cli:{getpass.getuser()}"
    diff = admin.import_set(flag_set, loaded.definitions, actor, dry_run=args.dry_run)
    print(render_diff(diff), end="")
    what = "would change" if args.dry_run else "changed"
    if diff.empty:
        print(f"flag set {flag_set!r}: no change")
    else:
        dry = " (dry run: nothing written)" if args.dry_run else ""
        print(f"flag set {flag_set!r}: {_summary(diff)} {what}{dry}")
    return 0


def render_diff(diff: SetDiff) -> str:
    """One line per change: `+ flag KEY` added, `~ flag KEY` updated, `- flag KEY` removed."""
    lines = []
    for kind, added, updated, removed in (
        ("flag", diff.added_flags, diff.updated_flags, diff.removed_flags),
        ("segment", diff.added_segments, diff.updated_segments, diff.removed_segments),
    ):
        lines += [f"+ {kind} {key}" for key in added]
        lines += [f"~ {kind} {key}" for key in updated]
        lines += [f"- {kind} {key}" for key in removed]
    return "".join(f"{line}\n" for line in lines)


def _summary(diff: SetDiff) -> str:
    flags = (len(diff.added_flags), len(diff.updated_flags), len(diff.removed_flags))
    segments = (len(diff.added_segments), len(diff.updated_segments), len(diff.removed_segments))
    return (
        f"flags {flags[0]} added, {flags[1]} updated, {flags[2]} removed; "
        f"segments {segments[0]} added, {segments[1]} updated, {segments[2]} removed;"
    )


def _export(admin: FlagAdmin, flag_set: str, args: argparse.Namespace, output_format: str) -> int:
    _write(flag_set_document(admin.export_set(flag_set)), args, output_format, f"flag set {flag_set!r}")
    return 0


def _convert(args: argparse.Namespace, output_format: str) -> int:
    loaded = load_checked(args.file, "nothing written")
    if loaded is None:
        return 1
    assert loaded.definitions is not None
    for warning in loaded.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    what = f"{plural(len(loaded.flags), 'flag')} and {plural(len(loaded.segments), 'segment')} of {args.file}"
    try:
        _write(flag_set_document(loaded.definitions), args, output_format, what)
    except OSError as error:
        print(f"{args.output}: cannot write: {error.strerror or error}", file=sys.stderr)
        return 1
    return 0


def _output_format(args: argparse.Namespace) -> str:
    """--format, else by --output's name as a file source reads it (FLAGS.JSON is JSON too), else
    JSON with --compact and YAML without; ValueError when --compact is asked of YAML."""
    output: Path | None = args.output
    if args.format:
        named = args.format
    elif output is not None:
        named = "json" if format_of_name(output.name) == JSON else "yaml"
    else:
        named = ""  # stdout: nothing says
    if args.compact:
        if named == "yaml":
            said = "--format yaml" if args.format else f"a file source reads {output} as YAML"
            raise ValueError(f"--compact writes JSON, and {said}: write to a .json file")
        return "json"
    return named or "yaml"


def _write(document: dict[str, Any], args: argparse.Namespace, output_format: str, what: str) -> None:
    """`document` as a flag file to --output (stdout by default), in `output_format` (_output_format)."""
    output: Path | None = args.output
    if output_format == "json":
        layout: dict[str, Any] = {"separators": (",", ":")} if args.compact else {"indent": 2}
        text = json.dumps(document, ensure_ascii=False, **layout) + "\n"
    else:
        import yaml

        text = yaml.safe_dump(document, sort_keys=False, allow_unicode=True)
    if output is None:
        sys.stdout.write(text)
    else:
        output.write_text(text, "utf-8")
        print(f"wrote {what} to {output}", file=sys.stderr)
