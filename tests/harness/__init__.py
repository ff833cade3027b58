"""Throwaway servers and helpers the tests share: Postgres, Redis, moto, service processes.

The fixtures are registered in tests/conftest.py through `pytest_plugins`.
"""
