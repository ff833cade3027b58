"""Which pod may open a connection to which: NetworkPolicies evaluated as the API defines them.

Enough of the semantics for our manifests: podSelector by matchLabels and matchExpressions
(`In`), namespaceSelector `{}` (any namespace), rules with or without peers and ports. A
connection from pod A to pod B on a port is allowed when A's egress allows it (no policy with
Egress selects A, or one of them has a matching rule) and B's ingress allows it likewise.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

Document = dict[str, Any]
Labels = Mapping[str, str]


@dataclass(frozen=True)
class Pod:
    labels: Labels
    namespace: str


def selects(selector: Document, labels: Labels) -> bool:
    for key, value in selector.get("matchLabels", {}).items():
        if labels.get(key) != value:
            return False
    for expression in selector.get("matchExpressions", []):
        assert expression["operator"] == "In", expression
        if labels.get(expression["key"]) not in expression["values"]:
            return False
    return True


def _peer_matches(peer: Document, pod: Pod, policy_namespace: str) -> bool:
    if "ipBlock" in peer:
        return False
    if "namespaceSelector" in peer:
        # Only `{}` (every namespace) is used in our manifests.
        assert peer["namespaceSelector"] == {}, peer
    elif pod.namespace != policy_namespace:
        return False
    return selects(peer.get("podSelector", {}), pod.labels)


def _rule_allows(rule: Document, peer_key: str, pod: Pod, port: int, namespace: str) -> bool:
    ports = rule.get("ports")
    if ports and not any(
        p.get("port") == port and p.get("protocol", "TCP") == "TCP" for p in ports
    ):
        return False
    peers = rule.get(peer_key)
    return not peers or any(_peer_matches(peer, pod, namespace) for peer in peers)


def _direction_allows(
    policies: list[Document], direction: str, subject: Pod, other: Pod, port: int
) -> bool:
    kind, peer_key = ("Egress", "to") if direction == "egress" else ("Ingress", "from")
    applying = [
        p
        for p in policies
        if p["metadata"].get("namespace") == subject.namespace
        and kind in p["spec"].get("policyTypes", ["Ingress"])
        and selects(p["spec"]["podSelector"], subject.labels)
    ]
    if not applying:
        return True
    return any(
        _rule_allows(rule, peer_key, other, port, p["metadata"].get("namespace", ""))
        for p in applying
        for rule in p["spec"].get(direction, [])
    )


def allowed(policies: list[Document], source: Pod, destination: Pod, port: int) -> bool:
    """Whether `source` may connect to `destination` on TCP `port`."""
    return _direction_allows(policies, "egress", source, destination, port) and (
        _direction_allows(policies, "ingress", destination, source, port)
    )
