"""A protoc plugin that runs a generator built into grpcio-tools' protoc: `python` (`*_pb2.py`)
or `grpc_python` (`*_pb2_grpc.py`), chosen by the plugin option `generator=<name>`.

grpcio-tools ships the gRPC Python generator only inside its own protoc, not as a
`protoc-gen-*` program, and buf runs built-ins only through a `protoc` binary. This plugin hands
the files buf sends to grpcio-tools' protoc as a descriptor set (source comments included) and
returns what it writes. buf fills in every field's `json_name`, which protoc records only when a
.proto sets one; the default ones are dropped first, so the code is byte for byte what protoc
makes from the .proto files themselves.
"""

import sys
import tempfile
from pathlib import Path

from google.protobuf import descriptor_pb2
from google.protobuf.compiler import plugin_pb2
from grpc_tools import protoc

_GENERATORS = ("python", "grpc_python")


def _default_json_name(name: str) -> str:
    """protoc's ToJsonName: drop each underscore and upper-case the letter after it."""
    parts = name.split("_")
    return parts[0] + "".join(part[:1].upper() + part[1:] for part in parts[1:])


def _drop_default_json_names(messages: "list[descriptor_pb2.DescriptorProto]") -> None:
    for message in messages:
        for field in [*message.field, *message.extension]:
            if field.json_name == _default_json_name(field.name):
                field.ClearField("json_name")
        _drop_default_json_names(list(message.nested_type))


def _generator(parameter: str) -> str:
    options = dict(item.partition("=")[::2] for item in parameter.split(",") if item)
    generator = options.get("generator", "")
    if generator not in _GENERATORS:
        raise SystemExit(f"protoc-gen-grpc-tools: opt generator= must be one of {_GENERATORS}")
    return generator


def main() -> None:
    request = plugin_pb2.CodeGeneratorRequest.FromString(sys.stdin.buffer.read())
    generator = _generator(request.parameter)
    response = plugin_pb2.CodeGeneratorResponse(
        supported_features=plugin_pb2.CodeGeneratorResponse.FEATURE_PROTO3_OPTIONAL
    )
    files = list(request.proto_file)
    for file in files:
        _drop_default_json_names(list(file.message_type))
        for field in file.extension:
            if field.json_name == _default_json_name(field.name):
                field.ClearField("json_name")
    with tempfile.TemporaryDirectory() as tmp:
        descriptors = Path(tmp, "descriptors.binpb")
        descriptors.write_bytes(descriptor_pb2.FileDescriptorSet(file=files).SerializeToString())
        out = Path(tmp, "out")
        out.mkdir()
        arguments = [
            "grpc_tools.protoc",
            f"--descriptor_set_in={descriptors}",
            f"--{generator}_out={out}",
            *request.file_to_generate,
        ]
        if protoc.main(arguments) != 0:
            response.error = f"grpc_tools.protoc --{generator}_out failed (its message is above)"
        else:
            for path in sorted(out.rglob("*.py")):
                response.file.add(name=path.relative_to(out).as_posix(), content=path.read_text())
    sys.stdout.buffer.write(response.SerializeToString())


if __name__ == "__main__":
    main()
