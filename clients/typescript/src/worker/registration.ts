// A served worker announcing itself: RegisterWorker once, then HeartbeatWorker every few seconds.
// A heartbeat that finds no record (the registry lost or expired it) registers again; any other
// failure is logged and retried on the next beat, so a registry outage never stops the worker.
import { Code } from "@connectrpc/connect";

import { toTpfError } from "../errors.js";
import type { RegistryClient } from "../registry.js";
import type { WorkerIdentity } from "./pipeline.js";

export interface Announcement {
  tenantId: string;
  workerId: string;
  /** Where the dispatcher reaches the worker: `host:port`. */
  endpoint: string;
  identity: WorkerIdentity;
}

export class WorkerRegistration {
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly registry: RegistryClient,
    private readonly announcement: Announcement,
    private readonly heartbeatMs = 10_000,
    private readonly log: (line: Record<string, unknown>) => void = (line) => console.error(JSON.stringify(line)),
  ) {}

  /** Registers (throwing the registry's TpfError if it refuses) and starts heartbeating. */
  async start(): Promise<void> {
    await this.register();
    this.timer = setInterval(() => void this.beat(), this.heartbeatMs);
  }

  stop(): void {
    clearInterval(this.timer);
    this.timer = undefined;
  }

  private async register(): Promise<void> {
    const { tenantId, workerId, endpoint, identity } = this.announcement;
    await this.registry.workers.register({
      tenantId,
      pipelineId: identity.pipelineId,
      workerId,
      contractVersion: identity.contractVersion,
      releaseVersion: identity.releaseVersion,
      protocol: "grpc",
      endpoint,
      artifactId: identity.artifactId,
      artifactDigest: identity.artifactDigest,
    });
    this.log({ level: "INFO", message: "registered worker", workerId, endpoint, releaseVersion: identity.releaseVersion });
  }

  private async beat(): Promise<void> {
    const { tenantId, workerId, identity } = this.announcement;
    try {
      await this.registry.workers.heartbeat({ tenantId, pipelineId: identity.pipelineId, workerId });
    } catch (thrown) {
      const error = toTpfError(thrown);
      if (error.code !== Code.NotFound) {
        this.log({ level: "WARNING", message: "worker heartbeat failed", error: error.toJSON() });
        return;
      }
      try {
        await this.register();
      } catch (again) {
        this.log({ level: "WARNING", message: "worker re-registration failed", error: toTpfError(again).toJSON() });
      }
    }
  }
}
