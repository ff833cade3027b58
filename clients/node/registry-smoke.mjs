#!/usr/bin/env node
// Registers a release from a descriptor file, activates it and reads the active release back,
// through tpf.registry.v1.ReleaseService. Prints one JSON line on stdout:
//   {"releaseVersion": "...", "status": "RELEASE_STATUS_ACTIVE", "contractVersion": "sha256:..."}
// On a gRPC error it prints one JSON line on stderr and exits 1:
//   {"error": {"code": 5, "codeName": "NOT_FOUND", "details": "...", "reason": "RELEASE_NOT_FOUND",
//              "domain": "tpf.registry", "metadata": {...}}}
// Other failures (bad arguments, missing protos) exit 2.
//
// node registry-smoke.mjs --target 127.0.0.1:50051 --token T --tenant X --pipeline P \
//   --descriptor /abs/pipeline-release.json [--release-version V] [--wkt-dir DIR] [--timeout-ms N]
// Without --descriptor, --release-version is activated as is (nothing is registered).

import { parseArgs } from 'node:util';

import grpc from '@grpc/grpc-js';

import { bearer, errorDetailsDecoder, includeDirs, loadRegistry, unary } from './registry-client.mjs';

const USAGE =
  'usage: registry-smoke.mjs --target HOST:PORT --token T --tenant X --pipeline P ' +
  '(--descriptor /abs/path | --release-version V) [--wkt-dir DIR] [--timeout-ms N]';

function options() {
  const { values } = parseArgs({
    options: {
      target: { type: 'string' },
      token: { type: 'string' },
      tenant: { type: 'string' },
      pipeline: { type: 'string' },
      descriptor: { type: 'string' },
      'release-version': { type: 'string' },
      'wkt-dir': { type: 'string' },
      'timeout-ms': { type: 'string', default: '30000' },
    },
  });
  for (const required of ['target', 'tenant', 'pipeline']) {
    if (!values[required]) {
      throw new Error(`--${required} is required\n${USAGE}`);
    }
  }
  if (!values.descriptor && !values['release-version']) {
    throw new Error(`--descriptor or --release-version is required\n${USAGE}`);
  }
  return values;
}

async function main() {
  let args;
  let dirs;
  try {
    args = options();
    dirs = includeDirs({ wktDir: args['wkt-dir'] });
  } catch (error) {
    process.stderr.write(`error: ${error.message}\n`);
    return 2;
  }
  const registry = loadRegistry(dirs);
  const describe = errorDetailsDecoder(dirs);
  const releases = new registry.ReleaseService(args.target, grpc.credentials.createInsecure());
  const metadata = bearer(args.token);
  const timeoutMs = Number(args['timeout-ms']);
  const call = (method, request) => unary(releases, method, request, metadata, timeoutMs);
  const scope = { tenantId: args.tenant, pipelineId: args.pipeline };

  try {
    let releaseVersion = args['release-version'];
    if (args.descriptor) {
      const registered = await call('RegisterRelease', {
        ...scope,
        releaseDescriptorPath: args.descriptor,
      });
      releaseVersion ??= registered.release.releaseVersion;
    }
    await call('ActivateRelease', { ...scope, releaseVersion, reason: 'registry-smoke.mjs' });
    const { release } = await call('GetActiveRelease', scope);
    const line = {
      releaseVersion: release.releaseVersion,
      status: release.status,
      contractVersion: release.contractVersion,
    };
    process.stdout.write(`${JSON.stringify(line)}\n`);
    return 0;
  } catch (error) {
    if (error.code === undefined) {
      throw error;
    }
    process.stderr.write(`${JSON.stringify({ error: describe(error) })}\n`);
    return 1;
  } finally {
    releases.close();
  }
}

process.exitCode = await main();
