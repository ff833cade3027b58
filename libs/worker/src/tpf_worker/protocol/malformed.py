"""What a worker-protocol document that cannot be used raises."""


class MalformedEnvelope(ValueError):
    """A worker-protocol document is not valid JSON, has unknown keys, or breaks TPF's rules."""


class InvalidCommand(MalformedEnvelope):
    """A command that binds as JSON but fails the worker's validation (§9.1).

    TPF's gRPC worker reports the two differently ("Malformed ..." versus "Invalid ...").
    """
