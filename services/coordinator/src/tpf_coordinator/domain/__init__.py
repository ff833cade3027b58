"""Pure coordinator rules: the execution state machine, retries, failures, tokens. No I/O."""
