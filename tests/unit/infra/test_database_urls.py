"""Where a service logs in: its role put into Postgres's location, over TCP or a Unix
socket (decision 0070).

Breaks caught: a role URL that turns a socket URL into TCP on `127.0.0.1` (asyncpg
ignores the query's `host` and `port` once the URL names a host, so the service would
dial port 5432 of loopback), a URL without credentials that loses its `//` (asyncpg then
reads no host at all), a client URL that names a socket the server never made, a
password kept in the query (SQLAlchemy would log the API in as the admin), a port
parted from its host, a URL whose two hosts asyncpg and SQLAlchemy would read
differently, and a malformed URL refused without the variable it came from (or, for
a port, as a bare `ValueError`).
"""

from __future__ import annotations

import socket
from pathlib import Path

import pytest
from sqlalchemy.dialects.postgresql.asyncpg import dialect
from sqlalchemy.engine import make_url

from awooop.infra.embedded.postgres import client_url, tcp_url
from awooop.infra.settings import (
    Settings,
    SettingsError,
    role_url,
    socket_url,
    sqlalchemy_url,
    without_credentials,
)

SOCKET = socket_url("/var/tmp/awooop pg/postgres", 54321)


def test_a_socket_url_names_its_folder_and_port_in_libpq_form() -> None:
    assert SOCKET == "postgresql://postgres@/postgres?host=/var/tmp/awooop%20pg/postgres&port=54321"


@pytest.mark.parametrize(
    ("url", "location"),
    [
        (SOCKET, "postgresql:///postgres?host=/var/tmp/awooop%20pg/postgres&port=54321"),
        ("postgresql://u:p%40w@db.internal:5433/app", "postgresql://db.internal:5433/app"),
        (
            "postgresql://db.internal/app?sslmode=require",
            "postgresql://db.internal/app?sslmode=require",
        ),
    ],
)
def test_without_credentials_keeps_where_postgres_is(url: str, location: str) -> None:
    assert without_credentials(url) == location


def test_a_role_url_keeps_the_socket() -> None:
    url = role_url(without_credentials(SOCKET), "awooop_runtime", "p@ss word")
    assert url == (
        "postgresql://awooop_runtime:p%40ss%20word@/postgres"
        "?host=/var/tmp/awooop%20pg/postgres&port=54321"
    )


def test_credentials_in_the_query_are_credentials_too() -> None:
    admin = "postgresql:///postgres?host=/run/pg&port=5433&user=postgres&password=adminpw"
    assert without_credentials(admin) == "postgresql:///postgres?host=/run/pg&port=5433"
    api = role_url(admin, "awooop_api", None)
    assert "adminpw" not in api
    _, options = dialect().create_connect_args(make_url(sqlalchemy_url(api)))
    assert options["user"] == "awooop_api"
    assert "password" not in options


def test_a_port_stays_with_the_host_it_belongs_to() -> None:
    # A socket with its port before the path: asyncpg would dial ('', 5433).
    assert role_url("postgresql://:5433/db?host=/run/pg", "r", None) == (
        "postgresql://r@/db?host=/run/pg&port=5433"
    )
    # No host anywhere: loopback, on the query's port rather than 5432.
    assert role_url("postgresql:///db?port=5433", "r", None) == "postgresql://r@127.0.0.1:5433/db"


def test_a_url_naming_its_host_twice_is_refused() -> None:
    with pytest.raises(SettingsError, match="names a host twice"):
        role_url("postgresql://db.internal/app?host=/run/pg", "r", None)
    with pytest.raises(SettingsError, match="not a number"):
        role_url("postgresql:///app?port=fast", "r", None)


def test_a_port_that_is_not_a_number_is_refused_by_name() -> None:
    with pytest.raises(SettingsError, match="cannot be read: Port could not be cast"):
        role_url("postgresql://db:fast/app", "r", None)


@pytest.mark.parametrize(
    ("variable", "url", "reason"),
    [
        ("AWOOOP_POSTGRES_URL", "postgresql://db.internal/app?host=/run/pg", "host twice"),
        ("AWOOOP_POSTGRES_URL", "postgresql:///app?port=fast", "not a number"),
        ("AWOOOP_DATABASE_URL", "postgresql://postgres@db:99999/app", "out of range"),
    ],
)
def test_a_malformed_postgres_url_is_refused_by_the_variable_it_came_from(
    tmp_path: Path, variable: str, url: str, reason: str
) -> None:
    # Read without complaint (a command that never touches Postgres still runs), then
    # refused where a role first logs in, naming the variable to fix.
    settings = Settings.from_env({"AWOOOP_HOME": str(tmp_path), variable: url})
    with pytest.raises(SettingsError, match=f"^{variable}: .*{reason}"):
        settings.service_database_url("runtime")
    with pytest.raises(SettingsError, match=f"^{variable}: .*{reason}"):
        settings.api_database_url()


def test_a_postgres_url_that_cannot_be_split_is_refused_when_read(tmp_path: Path) -> None:
    # Its password could not be taken out of it, so it is not kept at all.
    with pytest.raises(SettingsError, match=r"^AWOOOP_POSTGRES_URL: .*cannot be read"):
        Settings.from_env(
            {"AWOOOP_HOME": str(tmp_path), "AWOOOP_POSTGRES_URL": "postgresql://u:pw@[::1/db"}
        )


@pytest.mark.parametrize("folder", ["/tmp/a+b", "/tmp/a&b=c", "/tmp/100%", "/tmp/é #?@"])
def test_a_socket_folder_comes_back_exactly(folder: str) -> None:
    url = role_url(without_credentials(socket_url(folder, 5432)), "awooop_api", "pw")
    _, options = dialect().create_connect_args(make_url(sqlalchemy_url(url)))
    assert options["host"] == folder
    assert options["port"] == 5432


def test_a_role_url_over_tcp_is_unchanged_in_form() -> None:
    assert (
        role_url("postgresql://db:5433/app", "awooop_api", None)
        == "postgresql://awooop_api@db:5433/app"
    )
    assert (
        role_url("postgresql:///app", "awooop_api", None) == "postgresql://awooop_api@127.0.0.1/app"
    )
    assert role_url("postgresql://[::1]:5432/app", "r", None) == "postgresql://r@[::1]:5432/app"


def test_each_service_and_the_api_log_in_over_the_socket() -> None:
    settings = Settings.from_env(
        {"AWOOOP_POSTGRES_URL": without_credentials(SOCKET), "AWOOOP_DB_PASSWORD_RUNTIME": "pw"}
    )
    runtime = settings.service_database_url("runtime")
    assert runtime.startswith("postgresql://awooop_runtime:pw@/postgres?host=/var/tmp/")
    api = make_url(sqlalchemy_url(settings.api_database_url()))
    _, options = dialect().create_connect_args(api)
    assert options["host"] == "/var/tmp/awooop pg/postgres"
    assert options["port"] == 54321
    assert options["user"] == "awooop_api"


def test_the_client_url_is_the_socket_when_the_server_made_one(tmp_path: Path) -> None:
    with socket.socket(socket.AF_UNIX) as listening:
        listening.bind(str(tmp_path / ".s.PGSQL.5999"))
        assert client_url(tmp_path, 5999) == socket_url(str(tmp_path), 5999)
    assert client_url(tmp_path, 6000) == tcp_url(6000)  # no socket for that port
