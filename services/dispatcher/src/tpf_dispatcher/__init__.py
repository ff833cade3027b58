"""TPF dispatcher: claims work from the coordinator and runs it on workers.

Workers are reached in-process (local), over gRPC, REST or SQS (DESIGN §2, §8).
"""
