"""Installing what the local services need: Kafka jars, Java, Maven, Redis, Prometheus.

Kafka is not packaged for Debian, so its broker runs from Maven Central jars: ``mvn``
collects the runtime classpath described by ``deploy/kafka/pom.xml`` into
``<cache>/kafka-<version>/libs`` (``engine.paths.cache_dir()``, i.e. ``RISKSTREAM_CACHE`` or
``~/.cache/riskstream``). Maven keeps its downloads in ``~/.m2``, so a second install on the
same machine is offline and takes seconds. Redis and Prometheus come from Debian packages.

Every function here is idempotent and safe to call before each use. Run as
``python -m engine.services install all`` it needs nothing but the standard library and
this repository, which is how ``deploy/test.sh`` provisions a brand-new machine.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Literal

from engine.paths import REPO_ROOT, cache_dir
from engine.services.errors import ServiceInstallError

KAFKA_VERSION = "3.9.1"
KAFKA_DEPLOY_DIR = REPO_ROOT / "deploy" / "kafka"
_COMPLETE = ".complete"

Component = Literal["kafka", "redis", "prometheus", "all"]

# binary -> Debian package providing it.
DEBIAN_PACKAGES = {
    "java": "openjdk-17-jre-headless",
    "mvn": "maven",
    "redis-server": "redis-server",
    "prometheus": "prometheus",
    # librdkafka's command-line client: the tests produce and consume with a client the
    # project did not write (its default partitioner is CRC32, not murmur2).
    "kcat": "kcat",
}


def _which(binary: str) -> str | None:
    # apt installs into /usr/sbin for some packages, which a non-root PATH may lack.
    path = os.environ.get("PATH", os.defpath) + os.pathsep + "/usr/sbin:/sbin"
    return shutil.which(binary, path=path)


def find_binary(binary: str) -> Path:
    """The absolute path of ``binary``; :class:`ServiceInstallError` with the fix if missing."""
    found = _which(binary)
    if found is None:
        package = DEBIAN_PACKAGES.get(binary, binary)
        raise ServiceInstallError(
            f"{binary!r} not found on PATH; install it with `riskstream services install` "
            f"or `apt-get install {package}`"
        )
    return Path(found)


def _run(argv: list[str], what: str) -> None:
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    result = subprocess.run(argv, env=env, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        output = (result.stdout + result.stderr).strip().splitlines()[-30:]
        raise ServiceInstallError(
            f"{what} failed (exit {result.returncode}): {' '.join(argv)}\n" + "\n".join(output)
        )


def ensure_debian_package(binary: str, package: str | None = None) -> Path:
    """Make sure ``binary`` exists, installing Debian ``package`` with apt-get if it does not.

    As root apt-get runs directly, otherwise through ``sudo -n`` (never prompts). The
    package lists are refreshed only when the first attempt fails (a brand-new machine
    has none). Returns the binary's path; raises :class:`ServiceInstallError` saying what
    to run by hand when installing is impossible.
    """
    found = _which(binary)
    if found:
        return Path(found)
    package = package or DEBIAN_PACKAGES.get(binary, binary)
    apt = _which("apt-get")
    if apt is None:
        raise ServiceInstallError(
            f"{binary!r} is missing and this is not a Debian-like system (no apt-get); "
            f"install the package that provides {binary!r} by hand"
        )
    if os.geteuid() == 0:
        prefix: list[str] = []
    elif (
        _which("sudo")
        and subprocess.run(["sudo", "-n", "true"], capture_output=True).returncode == 0
    ):
        prefix = ["sudo", "-n"]
    else:
        raise ServiceInstallError(
            f"{binary!r} is missing and installing it needs root: run "
            f"`sudo apt-get install -y {package}`"
        )
    install = [*prefix, apt, "install", "-y", "-q", "--no-install-recommends", package]
    try:
        _run(install, f"installing {package}")
    except ServiceInstallError:
        _run([*prefix, apt, "update", "-q"], "apt-get update")
        _run(install, f"installing {package}")
    found = _which(binary)
    if found is None:
        raise ServiceInstallError(f"installed {package} but {binary!r} is still not on PATH")
    return Path(found)


def kafka_libs_dir(version: str = KAFKA_VERSION) -> Path:
    """Where :func:`install_kafka` puts the broker's jars (it may not exist yet)."""
    return cache_dir() / f"kafka-{version}" / "libs"


def kafka_installed(version: str = KAFKA_VERSION) -> bool:
    """Whether a complete jar set for ``version`` is in the cache."""
    libs = kafka_libs_dir(version)
    return (libs / _COMPLETE).is_file() and any(libs.glob(f"kafka_2.13-{version}.jar"))


def install_kafka(version: str = KAFKA_VERSION, *, force: bool = False) -> Path:
    """Download the Kafka broker's jars (once) and return their directory.

    Runs ``mvn dependency:copy-dependencies`` on ``deploy/kafka/pom.xml`` into a temporary
    directory, then renames it into place, so concurrent installs and interrupted ones
    never leave a half-filled ``libs`` directory. Idempotent: returns at once when the
    jars are already there (unless ``force``). Needs ``java`` and ``mvn`` on PATH;
    :class:`ServiceInstallError` says how to get them, or quotes Maven's error.
    """
    libs = kafka_libs_dir(version)
    if kafka_installed(version) and not force:
        return libs
    pom = KAFKA_DEPLOY_DIR / "pom.xml"
    if not pom.is_file():
        raise ServiceInstallError(f"Kafka POM not found at {pom}; is the repository complete?")
    find_binary("java")
    mvn = find_binary("mvn")
    libs.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="libs.tmp-", dir=libs.parent))
    try:
        shutil.copy2(pom, work / "pom.xml")  # mvn may write beside its POM: keep the repo clean
        out = work / "libs"
        _run(
            [
                str(mvn),
                "-q",
                "-B",
                "-Dstyle.color=never",
                "-f",
                str(work / "pom.xml"),
                "dependency:copy-dependencies",
                f"-DoutputDirectory={out}",
                "-DincludeScope=runtime",
                f"-Dkafka.version={version}",
            ],
            f"downloading Kafka {version} jars with Maven",
        )
        if not any(out.glob(f"kafka_2.13-{version}.jar")):
            raise ServiceInstallError(
                f"Maven finished but kafka_2.13-{version}.jar is not in {out}"
            )
        (out / _COMPLETE).write_text(f"kafka {version}\n")
        if kafka_installed(version) and not force:
            return libs  # a concurrent install finished first; keep its jars
        if libs.exists():
            shutil.rmtree(libs)  # an incomplete leftover, or force
        try:
            out.rename(libs)
        except OSError:
            if not kafka_installed(version):  # lost a race only if the winner finished
                raise
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return libs


def install(component: Component = "all", *, kafka_version: str = KAFKA_VERSION) -> list[str]:
    """Install one component or all of them; returns one human-readable line per item."""
    done: list[str] = []
    if component in ("kafka", "all"):
        done.append(f"java: {ensure_debian_package('java')}")
        done.append(f"mvn: {ensure_debian_package('mvn')}")
        done.append(f"kafka {kafka_version}: {install_kafka(kafka_version)}")
        done.append(f"kcat: {ensure_debian_package('kcat')}")
    if component in ("redis", "all"):
        done.append(f"redis-server: {ensure_debian_package('redis-server')}")
    if component in ("prometheus", "all"):
        done.append(f"prometheus: {ensure_debian_package('prometheus')}")
    return done


def main(argv: list[str] | None = None) -> int:
    """``python -m engine.services install [kafka|redis|prometheus|all]...``; exit status."""
    args = sys.argv[1:] if argv is None else argv
    components = args or ["all"]
    try:
        for component in components:
            if component not in ("kafka", "redis", "prometheus", "all"):
                print(f"unknown component {component!r}", file=sys.stderr)
                return 2
            for line in install(component):  # type: ignore[arg-type]
                print(line)
    except ServiceInstallError as exc:
        print(f"riskstream: error: {exc}", file=sys.stderr)
        return 1
    return 0
