// A tiny TPF registry client for Node.js: loads the suite's .proto files at run time with
// @grpc/proto-loader (no generated code), adds the bearer token to every call, and decodes the
// google.rpc.Status + google.rpc.ErrorInfo that every TPF error carries in its trailers.

import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import grpc from '@grpc/grpc-js';
import protoLoader from '@grpc/proto-loader';
import protobuf from 'protobufjs';

const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');

/** Environment variable naming the directory that holds google/protobuf/*.proto. */
export const WKT_DIR_ENV = 'TPF_PROTO_WKT_DIR';

/** Our protos, then google/api + google/rpc as `make setup` copies them into the repository. */
export const DEFAULT_PROTO_DIRS = [
  path.join(REPO_ROOT, 'proto'),
  path.join(REPO_ROOT, 'third_party', 'proto'),
];

/**
 * proto-loader options: lowerCamel field names (as in TPF's JSON), enums as their value names
 * (`RELEASE_STATUS_ACTIVE`), int64 as decimal strings, and unset scalars filled with defaults.
 */
export const LOADER_OPTIONS = Object.freeze({
  keepCase: false,
  longs: String,
  enums: String,
  defaults: true,
  oneofs: true,
});

const STATUS_DETAILS_KEY = 'grpc-status-details-bin';
const ERROR_INFO_TYPE_URL = 'type.googleapis.com/google.rpc.ErrorInfo';

/**
 * The include directories: our protos, third_party/proto and the well-known types
 * (google/protobuf/*.proto) from `wktDir` or $TPF_PROTO_WKT_DIR. Throws when one is missing.
 */
export function includeDirs({ wktDir = process.env[WKT_DIR_ENV], protoDirs = DEFAULT_PROTO_DIRS } = {}) {
  if (!wktDir) {
    throw new Error(
      `the well-known types directory is not set: pass --wkt-dir or set ${WKT_DIR_ENV} to a ` +
        'directory holding google/protobuf/*.proto, for example the one of grpc_tools: ' +
        `.venv/bin/python -c 'import grpc_tools, os; ` +
        `print(os.path.join(os.path.dirname(grpc_tools.__file__), "_proto"))'`,
    );
  }
  const dirs = [...protoDirs, wktDir];
  const expected = [
    [dirs[0], 'tpf/registry/v1/release_service.proto'],
    [dirs[1], 'google/rpc/status.proto'],
    [wktDir, 'google/protobuf/descriptor.proto'],
  ];
  for (const [dir, file] of expected) {
    if (!fs.existsSync(path.join(dir, file))) {
      throw new Error(`${path.join(dir, file)} does not exist (run \`make setup\` for third_party/proto)`);
    }
  }
  return dirs;
}

/** grpc-js client constructors of the registry's services, from the .proto files on disk. */
export function loadRegistry(dirs) {
  const definition = protoLoader.loadSync(
    ['tpf/registry/v1/release_service.proto', 'tpf/registry/v1/worker_service.proto'],
    { ...LOADER_OPTIONS, includeDirs: dirs },
  );
  return grpc.loadPackageDefinition(definition).tpf.registry.v1;
}

/** Metadata carrying `authorization: Bearer <token>`, sent with every call. */
export function bearer(token) {
  const metadata = new grpc.Metadata();
  if (token) {
    metadata.set('authorization', `Bearer ${token}`);
  }
  return metadata;
}

/** Promise of a unary call, with a deadline. */
export function unary(client, method, request, metadata, timeoutMs = 30_000) {
  return new Promise((resolve, reject) => {
    client[method](request, metadata, { deadline: Date.now() + timeoutMs }, (error, response) =>
      error ? reject(error) : resolve(response),
    );
  });
}

/** Decoder of the status details trailer: google.rpc.Status whose details hold ErrorInfo. */
export function errorDetailsDecoder(dirs) {
  const root = new protobuf.Root();
  root.resolvePath = (_origin, target) => {
    for (const dir of dirs) {
      const candidate = path.join(dir, target);
      if (fs.existsSync(candidate)) {
        return candidate;
      }
    }
    return target;
  };
  root.loadSync(['google/rpc/status.proto', 'google/rpc/error_details.proto'], { keepCase: false });
  root.resolveAll();
  const Status = root.lookupType('google.rpc.Status');
  const ErrorInfo = root.lookupType('google.rpc.ErrorInfo');

  /** `{code, codeName, details, reason, domain, metadata}` of a failed call (a grpc-js error). */
  return function describe(error) {
    const described = {
      code: error.code,
      codeName: grpc.status[error.code] ?? String(error.code),
      details: error.details ?? error.message,
      reason: null,
      domain: null,
      metadata: {},
    };
    for (const raw of error.metadata?.get(STATUS_DETAILS_KEY) ?? []) {
      const status = Status.decode(Buffer.isBuffer(raw) ? raw : Buffer.from(raw));
      for (const detail of status.details) {
        // protobufjs keeps `type_url` for its bundled google/protobuf/any.proto, `typeUrl` else.
        if ((detail.type_url ?? detail.typeUrl) === ERROR_INFO_TYPE_URL) {
          const info = ErrorInfo.toObject(ErrorInfo.decode(detail.value), { defaults: true });
          described.reason = info.reason;
          described.domain = info.domain;
          described.metadata = info.metadata ?? {};
        }
      }
    }
    return described;
  };
}
