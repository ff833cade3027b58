"""`make dev`: run the suite locally on embedded Postgres, one process per service."""
