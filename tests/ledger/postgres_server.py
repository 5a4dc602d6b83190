"""A real PostgreSQL server for the ledger tests, started from the Debian package's binaries (initdb, pg_ctl) in a
temporary directory. PostgreSQL refuses to run as root, and CI runs as root: there the server runs as the
``postgres`` system user (or ``nobody``), through runuser. Without the binaries the tests skip, except under
CI=true, where they fail (scripts/test installs the ``postgresql`` package)."""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import subprocess
import tempfile
from pathlib import Path

import psycopg
import pytest
from budgets.helpers import free_port

from servers import in_ci

__all__ = ["PASSWORD", "PostgresServer"]

PASSWORD = "pg-s3cret-DISTINCTIVE"
_USER = "costspan"


def _bin(name: str) -> str:
    found = shutil.which(name) or next(iter(sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"), reverse=True)), None)
    if found is None:
        message = f"{name} is not installed (scripts/test installs it with apt: Debian package postgresql)"
        if in_ci():
            pytest.fail(f"CI=true and {message}")
        pytest.skip(message)
    return found


class PostgresServer:
    """A PostgreSQL server on 127.0.0.1, its data in a temporary directory; password authentication."""

    def __init__(self) -> None:
        self._initdb, self._pg_ctl = _bin("initdb"), _bin("pg_ctl")
        self._as: list[str] = []
        self._directory = Path(tempfile.mkdtemp(prefix="costspan-pg-"))
        if os.geteuid() == 0:
            user = "postgres" if _has_user("postgres") else "nobody"
            self._as = ["runuser", "-u", user, "--"]
            account = pwd.getpwnam(user)
            os.chown(self._directory, account.pw_uid, account.pw_gid)
        self._directory.chmod(0o700)
        self.data = self._directory / "data"
        self.port = free_port()
        password_file = self._directory / "password"
        password_file.write_text(PASSWORD)
        if self._as:
            os.chown(password_file, *_ids(self._directory))
        self._run(
            self._initdb, "-D", str(self.data), "-U", _USER, "--auth=scram-sha-256", f"--pwfile={password_file}",
            "-E", "UTF8", "--no-sync", "--no-instructions",
        )  # fmt: skip
        self.start()

    def _run(self, *command: str) -> None:
        done = subprocess.run([*self._as, *command], capture_output=True, text=True, timeout=120, cwd="/")
        assert done.returncode == 0, f"{command[0]} failed: {done.stdout}{done.stderr}"

    def start(self) -> None:
        options = (
            f"-p {self.port} -c listen_addresses=127.0.0.1 -k {self._directory} -c fsync=off"
            " -c full_page_writes=off -c max_connections=60"
        )
        self._run(self._pg_ctl, "-D", str(self.data), "-l", str(self._directory / "log"), "-o", options, "-w", "start")

    def stop(self) -> None:
        self._run(self._pg_ctl, "-D", str(self.data), "-m", "fast", "-w", "stop")

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://{_USER}:{PASSWORD}@127.0.0.1:{self.port}/{database}"

    def create_database(self, name: str) -> str:
        """A new, empty database; its URL."""
        with psycopg.connect(self.url(), autocommit=True) as connection:
            connection.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def close(self) -> None:
        try:
            self.stop()
        finally:
            shutil.rmtree(self._directory, ignore_errors=True)


def _has_user(name: str) -> bool:
    try:
        pwd.getpwnam(name)
    except KeyError:
        return False
    return True


def _ids(path: Path) -> tuple[int, int]:
    status = path.stat()
    return status.st_uid, status.st_gid
