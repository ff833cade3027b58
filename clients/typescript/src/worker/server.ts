// TPF's gRPC worker service (`org.pipelineframework.orchestrator.grpc.TransitionWorkerService`)
// served over HTTP/2 plain text, as the Python SDK serves it: each request's HMAC signature is
// checked first (bare UNAUTHENTICATED on failure), then the protocol fields, with TPF's status
// codes and messages, so any TPF dispatcher, ours included, can call it.
import http2 from "node:http2";
import type { AddressInfo } from "node:net";

import { Code, ConnectError, type ConnectRouter } from "@connectrpc/connect";
import { connectNodeAdapter } from "@connectrpc/connect-node";

import { TransitionWorkerService } from "../gen/org/pipelineframework/orchestrator/grpc/transition_worker_pb.js";
import type { WorkerRuntime } from "./pipeline.js";
import {
  ENVELOPE_ENCODING,
  InvalidCommand,
  MalformedEnvelope,
  PROTOCOL_VERSION,
  decodeCommand,
  encodeCapability,
  encodeResult,
  type Capability,
  type Command,
} from "./protocol.js";
import { SignatureRejected, Verifier } from "./signing.js";

const SERVICE = "org.pipelineframework.orchestrator.grpc.TransitionWorkerService";
export const EXECUTE_PATH = `/${SERVICE}/Execute`;
export const CAPABILITIES_PATH = `/${SERVICE}/Capabilities`;
const METHOD = "GRPC";
const EMPTY = new Uint8Array();

export interface WorkerServerOptions {
  /** The HMAC secret the dispatcher signs with (its TPF_WORKER_SHARED_SECRET). */
  sharedSecret: string;
  /** Clock tolerance of signed timestamps; TPF's default is 2 minutes. */
  toleranceMs?: number;
  /** Logs a line per refused or failed request; console.error when absent. */
  log?: (line: Record<string, unknown>) => void;
}

export class WorkerServer {
  private readonly verifier: Verifier;
  private readonly log: (line: Record<string, unknown>) => void;
  private server: http2.Http2Server | undefined;
  private readonly sessions = new Set<http2.ServerHttp2Session>();
  private readonly capability: Capability;

  constructor(
    private readonly runtime: WorkerRuntime,
    options: WorkerServerOptions,
  ) {
    this.verifier = new Verifier(options.sharedSecret, options.toleranceMs);
    this.log = options.log ?? ((line) => console.error(JSON.stringify(line)));
    this.capability = runtime.capability("grpc");
  }

  /** Starts listening; resolves to the bound port (`port` 0 picks a free one). */
  async start(host = "127.0.0.1", port = 0): Promise<number> {
    const handler = connectNodeAdapter({
      routes: (router: ConnectRouter) => this.routes(router),
      grpc: true,
      grpcWeb: false,
      connect: false,
    });
    const server = http2.createServer(handler);
    // Dispatchers keep their connection open; stop() asks each to go away once idle.
    server.on("session", (session: http2.ServerHttp2Session) => {
      this.sessions.add(session);
      session.once("close", () => this.sessions.delete(session));
    });
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      server.listen(port, host, () => resolve());
    });
    this.server = server;
    return (server.address() as AddressInfo).port;
  }

  /** Stops taking calls and waits up to `graceMs` for those in flight. */
  async stop(graceMs = 10_000): Promise<void> {
    const server = this.server;
    if (server === undefined) return;
    this.server = undefined;
    await new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, graceMs);
      server.close(() => {
        clearTimeout(timer);
        resolve();
      });
      // GOAWAY: calls in flight finish, no new ones start, then each connection closes.
      for (const session of this.sessions) session.close();
    });
  }

  private authenticate(path: string, request: { timestamp: string; nonce: string; signature: string }, body: Uint8Array): void {
    try {
      this.verifier.verify(METHOD, path, request.timestamp, request.nonce, request.signature, body);
    } catch (error) {
      if (error instanceof SignatureRejected) {
        this.log({ level: "WARNING", message: "gRPC worker request rejected", reason: error.reason });
        // TPF answers a bare UNAUTHENTICATED, no description.
        throw new ConnectError("", Code.Unauthenticated);
      }
      throw error;
    }
  }

  private routes(router: ConnectRouter): void {
    router.service(TransitionWorkerService, {
      execute: async (request) => {
        this.authenticate(EXECUTE_PATH, request, request.commandEnvelope);
        if (request.protocolVersion !== PROTOCOL_VERSION || request.payloadEncoding !== ENVELOPE_ENCODING) {
          throw new ConnectError("Unsupported gRPC transition worker protocol envelope", Code.InvalidArgument);
        }
        let command: Command;
        try {
          command = decodeCommand(request.commandEnvelope);
        } catch (error) {
          if (error instanceof InvalidCommand) {
            throw new ConnectError("Invalid gRPC transition worker command", Code.InvalidArgument);
          }
          if (error instanceof MalformedEnvelope) {
            throw new ConnectError("Malformed gRPC transition worker command envelope", Code.InvalidArgument);
          }
          throw error;
        }
        let resultEnvelope: Uint8Array;
        try {
          resultEnvelope = encodeResult(await this.runtime.execute(command));
        } catch (error) {
          this.log({ level: "ERROR", message: "gRPC transition worker command failed", executionId: command.executionId, error: String(error) });
          throw new ConnectError("Failed executing gRPC transition worker command", Code.Internal);
        }
        return { protocolVersion: PROTOCOL_VERSION, payloadEncoding: ENVELOPE_ENCODING, resultEnvelope };
      },
      capabilities: async (request) => {
        this.authenticate(CAPABILITIES_PATH, request, EMPTY);
        if (request.protocolVersion !== PROTOCOL_VERSION) {
          throw new ConnectError("Unsupported gRPC transition worker capability protocol", Code.InvalidArgument);
        }
        return {
          protocolVersion: PROTOCOL_VERSION,
          payloadEncoding: ENVELOPE_ENCODING,
          capabilityEnvelope: encodeCapability(this.capability),
        };
      },
    });
  }
}
