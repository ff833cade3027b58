"""TPF's worker-protocol documents: command, result and capability JSON (TPF_WIRE §9.1-§9.3).

Every transport (local, REST, gRPC, SQS) carries these same three documents. TPF reads them with
a Jackson mapper that rejects unknown properties, so we emit exactly the documented keys in TPF's
order and reject any other key on the way in, nested records included. Keys that are missing are
tolerated where TPF's records tolerate them (null strings, `0`, `false`, `[]`), and then the same
validation TPF runs decides whether the document is usable.

Modules: `command`, `result` (with `suspension`, the await suspension's records) and
`capability`, one per document; `strict_json` (reading and writing a document's JSON the strict
way), `malformed` (the errors a bad document raises), `version` (the protocol version).
"""
