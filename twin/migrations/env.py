"""Alembic environment: runs the twin's migrations against the URL set by twin.database."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import context

config = context.config


def run_migrations_online() -> None:
    engine = sa.create_engine(config.get_main_option("sqlalchemy.url") or "", poolclass=sa.pool.NullPool)
    with engine.connect() as connection:
        connection.execute(sa.text("CREATE SCHEMA IF NOT EXISTS twin"))
        connection.commit()
        context.configure(connection=connection, version_table_schema="twin", transaction_per_migration=True)
        with context.begin_transaction():
            context.run_migrations()
    engine.dispose()


run_migrations_online()
