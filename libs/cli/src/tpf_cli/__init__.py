"""`tpf`, the command line of the TPF suite: registry releases and workers over gRPC.

Modules: `__main__` (argparse wiring), `connection` (options, channel, paging), `releases` and
`workers` (one function per command), `output` (tables, `key: value` lines, JSON), `errors`
(one-line failure messages).
"""
