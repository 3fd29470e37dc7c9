"""Alembic environment: the engine handed over by ``warehouse.migrate`` or, from the ``alembic``
command, the one ``ZHAOSHANG_DATABASE_URL`` names; the declared schema is ``warehouse.schema``."""

from alembic import context
from sqlalchemy import Engine

from warehouse.db import make_engine, resolve_url, with_timeouts
from warehouse.roles import become_owner
from warehouse.schema import metadata

# PostGIS's own tables and views (and the tiger/topology schemas' ones) are not ours to compare.
POSTGIS_TABLES = {"spatial_ref_sys", "geometry_columns", "geography_columns", "raster_columns", "raster_overviews"}


def include_object(obj: object, name: str | None, type_: str, reflected: bool, compare_to: object) -> bool:
    return not (type_ == "table" and name in POSTGIS_TABLES)


def run(engine: Engine) -> None:
    with engine.begin() as connection:
        # Where `zhaoshang setup` installed the roles, the owner role migrates (and so owns what it creates).
        become_owner(connection)
        context.configure(
            connection=connection,
            target_metadata=metadata,
            include_object=include_object,
            transaction_per_migration=True,
            compare_type=True,
        )
        with context.begin_transaction():
            context.run_migrations()


handed: Engine | None = context.config.attributes.get("engine")
if handed is not None:
    run(handed)
else:
    # The `alembic` command is an entry point: the URL and timeouts come from the settings.
    from zhaoshang.settings import load_settings

    settings = load_settings()
    url = with_timeouts(
        resolve_url(settings.database_url),
        connect_timeout_s=settings.connect_timeout,
        statement_timeout_s=settings.statement_timeout,
    )
    own = make_engine(url, as_app=False)
    try:
        run(own)
    finally:
        own.dispose()
