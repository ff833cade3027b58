"""The argparse side of `tpf`: one module per command group, and `parser.build_parser` joining them.

`command_adders` gives each command the connection options of the service it calls,
`common_options` and `payload_options` hold what several groups share.
"""
