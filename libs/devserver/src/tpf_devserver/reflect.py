"""`python -m tpf_devserver.reflect HOST:PORT [SERVICE]`: grpcurl-style `list` / `describe`.

grpcurl is not installable from the package registries this project may use, so this small
client of the standard reflection service shows what a server exposes.
"""

from __future__ import annotations

import sys

import grpc
from google.protobuf import descriptor_pb2
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc


def _ask(
    stub: reflection_pb2_grpc.ServerReflectionStub, request: reflection_pb2.ServerReflectionRequest
) -> reflection_pb2.ServerReflectionResponse:
    return next(iter(stub.ServerReflectionInfo(iter([request]), timeout=10)))


def list_services(target: str) -> list[str]:
    with grpc.insecure_channel(target) as channel:
        stub = reflection_pb2_grpc.ServerReflectionStub(channel)
        response = _ask(stub, reflection_pb2.ServerReflectionRequest(list_services=""))
        return sorted(s.name for s in response.list_services_response.service)


def describe(target: str, service: str) -> list[str]:
    """`rpc Name(Request) returns (Response)` lines of one service."""
    with grpc.insecure_channel(target) as channel:
        stub = reflection_pb2_grpc.ServerReflectionStub(channel)
        response = _ask(
            stub, reflection_pb2.ServerReflectionRequest(file_containing_symbol=service)
        )
        lines: list[str] = []
        for raw in response.file_descriptor_response.file_descriptor_proto:
            proto = descriptor_pb2.FileDescriptorProto.FromString(raw)
            for svc in proto.service:
                if f"{proto.package}.{svc.name}" != service:
                    continue
                for method in svc.method:
                    stream = "stream " if method.server_streaming else ""
                    lines.append(
                        f"rpc {method.name}({method.input_type.lstrip('.')}) "
                        f"returns ({stream}{method.output_type.lstrip('.')})"
                    )
        return lines


def main() -> None:
    if len(sys.argv) not in (2, 3):
        print("usage: python -m tpf_devserver.reflect HOST:PORT [SERVICE]", file=sys.stderr)
        raise SystemExit(2)
    target = sys.argv[1]
    try:
        lines = describe(target, sys.argv[2]) if len(sys.argv) == 3 else list_services(target)
    except grpc.RpcError as error:
        print(f"error: {error.code().name}: {error.details()}", file=sys.stderr)
        raise SystemExit(1) from None
    print("\n".join(lines))


if __name__ == "__main__":
    main()
