"""Worker SDK: author a pipeline in Python, serve it over TPF's worker protocols (local, gRPC, REST with HMAC, SQS), build its release."""
