"""gRPC servicers: proto ⇄ domain conversion and validation at the edge, nothing else."""
