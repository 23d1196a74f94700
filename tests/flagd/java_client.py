"""The Java OpenFeature flagd client (tests/flagd/java, FlagdClient.java), built once and run per test.

`mvn -q -B compile dependency:build-classpath` against the pinned pom; the build is kept in
tests/flagd/java/target with a stamp of what it was built from (the pom and the sources), so a
later session with the same files starts at once. The tests using it skip only where java or mvn
is not installed; a build that fails is a test failure.
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
from pathlib import Path

PROJECT = Path(__file__).with_name("java")
TARGET = PROJECT / "target"
CLASSPATH = TARGET / "classpath.txt"
STAMP = TARGET / ".built-from-sha256"
MAIN = "flagsidecar.flagd.FlagdClient"


class JavaUnavailable(RuntimeError):
    """java or mvn is not installed."""


def _digest() -> str:
    digest = hashlib.sha256()
    for path in [PROJECT / "pom.xml", *sorted((PROJECT / "src").rglob("*"))]:
        if path.is_file():
            digest.update(str(path.relative_to(PROJECT)).encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()


def classpath() -> str:
    """FlagdClient's classes and every jar of the pom (the SDK, the provider, ...), built if needed."""
    for tool in ("java", "mvn"):
        if shutil.which(tool) is None:
            raise JavaUnavailable(f"{tool} is not installed: the Java flagd provider tests need it")
    digest = _digest()
    if not (STAMP.exists() and STAMP.read_text() == digest and CLASSPATH.exists()):
        STAMP.unlink(missing_ok=True)
        result = subprocess.run(
            [
                "mvn",
                "-q",
                "-B",
                "-f",
                str(PROJECT / "pom.xml"),
                "compile",
                "dependency:build-classpath",
                f"-Dmdep.outputFile={CLASSPATH}",
            ],
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
        )
        if result.returncode != 0:
            output = f"{result.stdout[-3000:]}{result.stderr[-3000:]}"
            raise RuntimeError(f"mvn could not build {PROJECT}:\n{output}")
        STAMP.write_text(digest)
    return f"{TARGET / 'classes'}:{CLASSPATH.read_text().strip()}"


def command() -> list[str]:
    """The command that runs FlagdClient (its mode and options follow), building it if needed."""
    # -XX:TieredStopAtLevel=1: a short-lived client; C1 alone starts faster.
    return ["java", "-XX:TieredStopAtLevel=1", "-cp", classpath(), MAIN]
