"""The `--update-goldens` option."""

from __future__ import annotations

import pytest


def pytest_addoption(parser):
    parser.addoption("--update-goldens", action="store_true", help="Rewrite golden files from current output.")


@pytest.fixture
def update_goldens(request) -> bool:
    return request.config.getoption("--update-goldens")


@pytest.fixture(scope="session")
def postgres_url():
    from engines import PostgresCluster

    cluster = PostgresCluster()
    yield cluster.url
    cluster.stop()


@pytest.fixture(scope="session")
def spark():
    from engines import spark_session

    session = spark_session()
    yield session
    session.stop()
