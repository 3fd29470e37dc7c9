from alembic import context

from warehouse.roles import become_owner

engine = context.config.attributes["engine"]

with engine.begin() as connection:
    # Where `zhaoshang setup` installed the roles, the owner role migrates (and so owns what it creates).
    become_owner(connection)
    context.configure(connection=connection, target_metadata=None, transaction_per_migration=True)
    with context.begin_transaction():
        context.run_migrations()
