"""Persistence of executions, history, awaits and dead letters (all SQL lives here)."""
