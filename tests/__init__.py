"""The suite's tests; a package so that tests import their harness as `tests.harness`."""
