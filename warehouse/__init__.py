"""The PostGIS warehouse: connection, provisioning, migrations, the event log and its projections."""
