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


@pytest.fixture(scope="session")
def demo_data(tmp_path_factory):
    """The demo shop's data directory (10,000 customers, the generator's defaults), generated once per run as
    `make demo` does: a fresh clone has no `examples/shop/data`, and tests never depend on one."""
    import subprocess
    import sys
    from pathlib import Path

    directory = tmp_path_factory.mktemp("demo-shop")
    generator = Path(__file__).resolve().parent.parent / "examples" / "shop" / "generate.py"
    subprocess.run([sys.executable, str(generator), str(directory)], check=True, capture_output=True)
    return directory
