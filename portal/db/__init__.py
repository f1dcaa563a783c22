"""The database beyond the models: hot-path connections, SQL helpers, the schema revision,
backups and the migrate-on-init lifecycle."""
