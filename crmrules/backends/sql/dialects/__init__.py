"""One small module per SQL dialect; DIALECTS maps the names users type to them."""

from __future__ import annotations

from crmrules.backends.sql.dialect import SqlDialect
from crmrules.backends.sql.dialects.bigquery import BigQuery
from crmrules.backends.sql.dialects.clickhouse import ClickHouse
from crmrules.backends.sql.dialects.duckdb import DuckDB
from crmrules.backends.sql.dialects.postgres import Postgres
from crmrules.backends.sql.dialects.snowflake import Snowflake
from crmrules.backends.sql.dialects.spark import Spark
from crmrules.backends.sql.dialects.sqlite import SQLite
from crmrules.backends.sql.dialects.trino import Trino

DIALECTS: dict[str, type[SqlDialect]] = {d.name: d for d in (DuckDB, Postgres, SQLite, Spark, BigQuery, Snowflake,
                                                             Trino, ClickHouse)}
