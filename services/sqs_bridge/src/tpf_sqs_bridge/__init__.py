"""SQS bridge: submissions and interaction completions from SQS queues; replies and terminal
events back (docs/sqs-bridge.md)."""
