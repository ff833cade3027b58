"""`tpf`, the command line of the TPF suite: registry releases and workers, coordinator
executions, interactions and dead letters, over gRPC.

Modules: `__main__` (runs a parsed command, prints its report), `arguments` (the argparse
side, one module per command group), `connection` (options, channels, paging), `releases` and
`workers` (registry commands), `executions`, `interactions` and `dead_letters` (coordinator
commands), `payloads` (plain JSON to TPF envelopes and back), `filters` (status, reason and time
filters), `output` (tables, `key: value` lines, JSON), `errors` (one-line failure messages).
"""
