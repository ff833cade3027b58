"""TPF dispatcher: claims work from the coordinator and runs it on workers over local, gRPC, REST and SQS."""
