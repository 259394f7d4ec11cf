"""The revisions, one file each: read by Alembic as files (gateway.store.migrations), never imported."""
