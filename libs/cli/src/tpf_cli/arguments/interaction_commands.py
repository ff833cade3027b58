"""`tpf interactions list | complete`: pending interactions (coordinator)."""

from __future__ import annotations

from tpf_cli import interactions
from tpf_cli.arguments.command_adders import CommandAdders, SubParsers
from tpf_cli.arguments.common_options import add_page_size
from tpf_cli.arguments.payload_options import add_payload_options, payload_source


def add_interaction_commands(areas: SubParsers, adders: CommandAdders) -> None:
    itr = areas.add_parser("interactions", help="list and complete pending interactions")
    itr_commands = itr.add_subparsers(dest="command", metavar="COMMAND", required=True)
    sub = adders.coordinator(
        itr_commands,
        "list",
        "list the tenant's pending interactions, by deadline",
        lambda c, a: interactions.list_pending(
            c, step_id=a.step_id, assignee=a.assignee, group=a.group, page_size=a.page_size
        ),
    )
    sub.add_argument("--step-id", default="", metavar="STEP", help="only this await step")
    sub.add_argument("--assignee", default="", help="only interactions assigned to this user")
    sub.add_argument("--group", default="", help="only interactions assigned to this group")
    add_page_size(sub)

    sub = adders.coordinator(
        itr_commands,
        "complete",
        "answer a pending interaction; its execution continues after the await",
        lambda c, a: interactions.complete(
            c,
            interactions.Handle(
                interaction_id=a.interaction_id or "",
                correlation_id=a.correlation_id or "",
                resume_token=a.resume_token or "",
            ),
            payload_source(a, "response"),
            actor=a.actor,
            idempotency_key=a.key,
        ),
    )
    handle = sub.add_mutually_exclusive_group(required=True)
    handle.add_argument("--interaction-id", metavar="ID")
    handle.add_argument("--correlation-id", metavar="ID")
    handle.add_argument("--resume-token", metavar="TOKEN")
    add_payload_options(sub, "response", "response")
    sub.add_argument("--actor", default="", help="who answered (default: the token's subject)")
    sub.add_argument(
        "--key", default="", metavar="IDEMPOTENCY_KEY", help="stored with the completion"
    )
