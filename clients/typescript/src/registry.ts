// Typed client of the registry (:50052): releases and workers. Every call has a deadline,
// carries the bearer token, retries UNAVAILABLE, and throws TpfError.
import type { DescMessage, MessageInitShape } from "@bufbuild/protobuf";
import { createClient, type Client } from "@connectrpc/connect";

import {
  ReleaseService,
  type ActivateReleaseRequestSchema,
  type ActivateReleaseResponse,
  type GetActiveReleaseRequestSchema,
  type GetActiveReleaseResponse,
  type GetReleaseRequestSchema,
  type GetReleaseResponse,
  type ListActivationsRequestSchema,
  type ListActivationsResponse,
  type ListReleasesRequestSchema,
  type ListReleasesResponse,
  type RegisterReleaseRequestSchema,
  type RegisterReleaseResponse,
} from "./gen/tpf/registry/v1/release_service_pb.js";
import {
  WorkerService,
  type DeregisterWorkerRequestSchema,
  type DeregisterWorkerResponse,
  type DrainWorkerRequestSchema,
  type DrainWorkerResponse,
  type HeartbeatWorkerRequestSchema,
  type HeartbeatWorkerResponse,
  type ListWorkersRequestSchema,
  type ListWorkersResponse,
  type RegisterWorkerRequestSchema,
  type RegisterWorkerResponse,
  type ResolveWorkersRequestSchema,
  type ResolveWorkersResponse,
  type UndrainWorkerRequestSchema,
  type UndrainWorkerResponse,
} from "./gen/tpf/registry/v1/worker_service_pb.js";
import { createTransport, type CallOptions, type ClientOptions, type TpfTransport } from "./options.js";
import { withRetries } from "./retry.js";

type Init<Schema extends DescMessage> = MessageInitShape<Schema>;
type Options = { timeoutMs?: number; signal?: AbortSignal };

export class RegistryClient {
  /** The generated Connect clients, for calls this class does not wrap. */
  readonly releaseService: Client<typeof ReleaseService>;
  readonly workerService: Client<typeof WorkerService>;
  readonly releases: ReleaseCalls;
  readonly workers: WorkerCalls;
  private readonly connection: TpfTransport;

  /** `transport` shares one connection between clients; by default each opens its own. */
  constructor(options: ClientOptions, transport: TpfTransport = createTransport(options)) {
    this.connection = transport;
    this.releaseService = createClient(ReleaseService, transport.transport);
    this.workerService = createClient(WorkerService, transport.transport);
    const call = <T>(attempt: (o: Options) => Promise<T>, c?: CallOptions): Promise<T> => {
      const o = {
        ...(c?.deadlineMs !== undefined ? { timeoutMs: c.deadlineMs } : {}),
        ...(c?.signal !== undefined ? { signal: c.signal } : {}),
      };
      return withRetries(() => attempt(o), options.retry, c?.signal);
    };
    const r = this.releaseService;
    const w = this.workerService;
    this.releases = {
      register: (request, c) => call((o) => r.registerRelease(request, o), c),
      activate: (request, c) => call((o) => r.activateRelease(request, o), c),
      get: (request, c) => call((o) => r.getRelease(request, o), c),
      list: (request, c) => call((o) => r.listReleases(request, o), c),
      active: (request, c) => call((o) => r.getActiveRelease(request, o), c),
      activations: (request, c) => call((o) => r.listActivations(request, o), c),
    };
    this.workers = {
      register: (request, c) => call((o) => w.registerWorker(request, o), c),
      heartbeat: (request, c) => call((o) => w.heartbeatWorker(request, o), c),
      drain: (request, c) => call((o) => w.drainWorker(request, o), c),
      undrain: (request, c) => call((o) => w.undrainWorker(request, o), c),
      deregister: (request, c) => call((o) => w.deregisterWorker(request, o), c),
      list: (request, c) => call((o) => w.listWorkers(request, o), c),
      resolve: (request, c) => call((o) => w.resolveWorkers(request, o), c),
    };
  }

  /** Closes the connection; calls in flight fail. */
  close(): void {
    this.connection.close();
  }
}

export interface ReleaseCalls {
  register(request: Init<typeof RegisterReleaseRequestSchema>, call?: CallOptions): Promise<RegisterReleaseResponse>;
  activate(request: Init<typeof ActivateReleaseRequestSchema>, call?: CallOptions): Promise<ActivateReleaseResponse>;
  get(request: Init<typeof GetReleaseRequestSchema>, call?: CallOptions): Promise<GetReleaseResponse>;
  list(request: Init<typeof ListReleasesRequestSchema>, call?: CallOptions): Promise<ListReleasesResponse>;
  active(request: Init<typeof GetActiveReleaseRequestSchema>, call?: CallOptions): Promise<GetActiveReleaseResponse>;
  activations(request: Init<typeof ListActivationsRequestSchema>, call?: CallOptions): Promise<ListActivationsResponse>;
}

export interface WorkerCalls {
  register(request: Init<typeof RegisterWorkerRequestSchema>, call?: CallOptions): Promise<RegisterWorkerResponse>;
  heartbeat(request: Init<typeof HeartbeatWorkerRequestSchema>, call?: CallOptions): Promise<HeartbeatWorkerResponse>;
  drain(request: Init<typeof DrainWorkerRequestSchema>, call?: CallOptions): Promise<DrainWorkerResponse>;
  undrain(request: Init<typeof UndrainWorkerRequestSchema>, call?: CallOptions): Promise<UndrainWorkerResponse>;
  deregister(request: Init<typeof DeregisterWorkerRequestSchema>, call?: CallOptions): Promise<DeregisterWorkerResponse>;
  list(request: Init<typeof ListWorkersRequestSchema>, call?: CallOptions): Promise<ListWorkersResponse>;
  resolve(request: Init<typeof ResolveWorkersRequestSchema>, call?: CallOptions): Promise<ResolveWorkersResponse>;
}
