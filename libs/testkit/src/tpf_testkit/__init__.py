"""What the tests and the benchmarks share (development only, never in the service image).

bench/ must not import the test suite, and the product packages must not carry test fixtures;
both import these modules instead: clients of the services with the test tokens
(`registry_client`, `coordinator_client`), the fake dispatcher, the restaurant payloads, demo
releases in TPF's jar format, a free-port helper and a test OTLP receiver. tests/support and
tests/harness re-export them under their old names.
"""
