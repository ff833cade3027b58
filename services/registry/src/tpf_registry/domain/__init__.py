"""Pure registry logic: descriptors, contracts, releases, workers. No I/O, no grpc, no SQL."""
