"""TPF coordinator service: durable executions on Postgres."""
