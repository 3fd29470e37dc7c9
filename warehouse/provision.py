"""Set-up of the local PostgreSQL/PostGIS: install where missing, start when down, create, migrate.

Works on a machine with a running PostgreSQL 15 (trust or peer auth) and on a fresh Debian
machine with none: there it installs Debian's ``postgresql-15`` and ``postgresql-15-postgis-3``.
For a remote database URL only the database, the extension and the schema are taken care of.
Either way it installs the owner and application roles (``warehouse.roles``): the owner migrates,
the application's sessions may only read and append to the event log.
"""

from __future__ import annotations

import getpass
import glob
import logging
import os
import shutil
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

from sqlalchemy import text
from sqlalchemy.engine import URL

from warehouse.db import DAGSTER_SCHEMA, create_postgis, ensure_database, is_local, make_engine
from warehouse.migrate import upgrade
from warehouse.roles import APP_ROLE, become_owner, grant_app, install_roles

log = logging.getLogger(__name__)

PG_MAJOR = "15"
POSTGIS_PACKAGE = f"postgresql-{PG_MAJOR}-postgis-3"

Say = Callable[[str], None]


class SetupError(RuntimeError):
    pass


def _run(cmd: list[str], say: Say, *, check: bool = True) -> subprocess.CompletedProcess[str]:
    if os.geteuid() != 0 and cmd[0] in ("apt-get", "pg_ctlcluster", "runuser"):
        if not shutil.which("sudo"):
            raise SetupError(f"needs root to run {' '.join(cmd)}; run as root or install sudo")
        cmd = ["sudo", *cmd]
    say("$ " + " ".join(cmd))
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if check and proc.returncode != 0:
        raise SetupError(f"{' '.join(cmd)} failed ({proc.returncode}): {proc.stderr.strip()[-2000:]}")
    return proc


def _dpkg_installed(package: str) -> bool:
    proc = subprocess.run(["dpkg-query", "-W", "-f=${Status}", package], capture_output=True, text=True)
    return proc.returncode == 0 and "install ok installed" in proc.stdout


def _postgis_available() -> bool:
    return bool(glob.glob("/usr/share/postgresql/*/extension/postgis.control"))


def _apt_install(packages: list[str], say: Say) -> None:
    if not shutil.which("apt-get"):
        raise SetupError(f"PostGIS is missing and this is no Debian machine: install {' '.join(packages)} by hand")
    _run(["apt-get", "update", "-qq"], say)
    _run(["apt-get", "install", "-y", "-qq", "--no-install-recommends", *packages], say)


def _server_ready(url: URL) -> bool:
    if not shutil.which("pg_isready"):
        return False
    host = url.query.get("host") or url.host or "/var/run/postgresql"
    if isinstance(host, tuple):
        host = host[0]
    cmd = ["pg_isready", "-q", "-h", str(host)]
    if url.port:
        cmd += ["-p", str(url.port)]
    return subprocess.run(cmd).returncode == 0


def _start_clusters(say: Say) -> None:
    for conf in sorted(Path("/etc/postgresql").glob("*/*/postgresql.conf")):
        version, cluster = conf.parent.parent.name, conf.parent.name
        _run(["pg_ctlcluster", "--skip-systemctl-redirect", version, cluster, "start"], say, check=False)


def _can_connect(url: URL) -> bool:
    engine = make_engine(url.set(database="postgres"), as_app=False)
    try:
        with engine.connect():
            return True
    except Exception:
        return False
    finally:
        engine.dispose()


def _ensure_role(url: URL, say: Say) -> None:
    """On a fresh Debian server only ``postgres`` exists (peer auth): create a superuser role for us."""
    user = url.username or getpass.getuser()
    if user == "postgres" or not shutil.which("runuser") or _can_connect(url):
        return
    probe = _run(
        ["runuser", "-u", "postgres", "--", "psql", "-tAc", f"SELECT 1 FROM pg_roles WHERE rolname = '{user}'"],
        say,
        check=False,
    )
    if probe.returncode == 0 and probe.stdout.strip() != "1":
        _run(["runuser", "-u", "postgres", "--", "psql", "-c", f'CREATE ROLE "{user}" SUPERUSER LOGIN'], say)


def setup(url: URL, say: Say = print) -> list[str]:
    """Bring the database named by ``url`` to the newest schema. Returns what was done."""
    done: list[str] = []
    local = is_local(url)
    if local:
        missing = []
        if not shutil.which("pg_ctlcluster") and not _server_ready(url):
            missing += [f"postgresql-{PG_MAJOR}"]
        if not _postgis_available():
            missing += [POSTGIS_PACKAGE]
        if missing:
            _apt_install(missing, say)
            done.append(f"installed {' '.join(missing)}")
        if not _server_ready(url):
            _start_clusters(say)
            for _ in range(60):
                if _server_ready(url):
                    break
                time.sleep(0.5)
            else:
                raise SetupError("PostgreSQL did not come up; see /var/log/postgresql/")
            done.append("started PostgreSQL")
        _ensure_role(url, say)
    if ensure_database(url):
        done.append(f"created database {url.database}")
    done += prepare(url)
    for line in done:
        log.info("setup: %s", line, extra={"database": url.render_as_string(hide_password=True)})
    return done


def prepare(url: URL) -> list[str]:
    """PostGIS, the roles, the schema (migrated as the owner) and the application's grants in an
    existing database; what ``setup`` does once the server is up. Returns what was done."""
    done: list[str] = []
    engine = make_engine(url, as_app=False)
    try:
        with engine.begin() as conn:
            create_postgis(conn)
            done += install_roles(conn)
            # Dagster's storage: the application role owns it, so Dagster may create its tables there
            # whether it logs in as the application or as a member of it (as after set-up).
            created = conn.execute(text("SELECT to_regnamespace(:s) IS NULL"), {"s": DAGSTER_SCHEMA}).scalar_one()
            conn.exec_driver_sql(f"CREATE SCHEMA IF NOT EXISTS {DAGSTER_SCHEMA} AUTHORIZATION {APP_ROLE}")
            if created:
                done.append(f"created schema {DAGSTER_SCHEMA} for Dagster's runs, events and schedules")
        upgrade(engine)
        with engine.begin() as conn:
            become_owner(conn)
            grant_app(conn)
        done.append(f"{APP_ROLE} may only read and append to the event log; commands run as it")
        with engine.connect() as conn:
            postgis = conn.execute(text("SELECT postgis_lib_version()")).scalar()
        done.append(f"schema migrated (PostGIS {postgis})")
    finally:
        engine.dispose()
    return done
