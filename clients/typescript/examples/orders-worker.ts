// A TPF worker written in TypeScript: a three-step order pipeline with a human approval in the
// middle, served over TPF's gRPC worker protocol, registered in the registry and heartbeating.
//
//   node dist/examples/orders-worker.js describe          # the steps, for the release build
//   TPF_WORKER_SHARED_SECRET=… TPF_WORKER_REGISTRY_TOKEN=… node dist/examples/orders-worker.js \
//     serve --descriptor /abs/pipeline-release.json --tenant acme --worker-id orders-ts-1 \
//     --registry 127.0.0.1:50052 [--port 0] [--advertise host:port] [--heartbeat-ms 10000]
//
// It prints one `{"event":"worker-ready",…}` line on stdout once it serves, and stops on SIGTERM.
import { readFileSync } from "node:fs";
import { parseArgs } from "node:util";

import {
  NonRetryableStepError,
  Pipeline,
  RegistryClient,
  WorkerRegistration,
  WorkerRuntime,
  WorkerServer,
  type Json,
  type WorkerIdentity,
} from "../src/index.js";

const TYPES = "org.pipelineframework.typescript.orders";

type Order = { orderId: string; quantity: number; unitPrice: number; reject?: string };

export const pipeline = new Pipeline("org.pipelineframework.typescript.orders")
  .step(
    "Check Order",
    { service: "CheckOrderService", inputType: `${TYPES}.Order`, outputType: `${TYPES}.CheckedOrder` },
    (input) => {
      const order = input as Order;
      if (order.reject) {
        // Fails at once, without retries, and dead-letters the execution.
        throw new NonRetryableStepError(`order ${order.orderId} rejected: ${order.reject}`);
      }
      return { orderId: order.orderId, quantity: order.quantity, total: order.quantity * order.unitPrice };
    },
  )
  .awaitStep("Approve Order", {
    service: "ApproveOrderService",
    inputType: `${TYPES}.CheckedOrder`,
    outputType: `${TYPES}.Decision`,
    timeoutMs: 30 * 60 * 1000,
    idempotencyKeyFields: ["orderId"],
  })
  .step(
    "Record Decision",
    { service: "RecordDecisionService", inputType: `${TYPES}.Decision`, outputType: `${TYPES}.Receipt` },
    (decision, context) => ({ decision, recordedBy: context.idempotencyKey, steps: context.stepIndex + 1 }) as Json,
  );

/** The release this build serves, read from the descriptor the release build wrote. */
function identityOf(descriptorPath: string): WorkerIdentity {
  const descriptor = JSON.parse(readFileSync(descriptorPath, "utf8")) as {
    pipelineId: string;
    contractVersion: string;
    releaseVersion: string;
    artifacts: Array<{ artifactId: string; digest: string }>;
  };
  const [artifact] = descriptor.artifacts;
  if (artifact === undefined) throw new Error(`${descriptorPath} names no artifact`);
  return {
    pipelineId: descriptor.pipelineId,
    contractVersion: descriptor.contractVersion,
    releaseVersion: descriptor.releaseVersion,
    artifactId: artifact.artifactId,
    artifactDigest: artifact.digest,
  };
}

function env(name: string): string {
  const value = process.env[name];
  if (!value) throw new Error(`environment variable ${name} is empty or unset`);
  return value;
}

async function serve(args: string[]): Promise<void> {
  const { values } = parseArgs({
    args,
    options: {
      descriptor: { type: "string" },
      tenant: { type: "string" },
      "worker-id": { type: "string" },
      registry: { type: "string" },
      host: { type: "string", default: "127.0.0.1" },
      port: { type: "string", default: "0" },
      advertise: { type: "string" },
      "heartbeat-ms": { type: "string", default: "10000" },
    },
  });
  if (!values.descriptor || !values.tenant || !values["worker-id"] || !values.registry) {
    throw new Error("serve needs --descriptor, --tenant, --worker-id and --registry");
  }
  const runtime = new WorkerRuntime(pipeline, identityOf(values.descriptor));
  const server = new WorkerServer(runtime, { sharedSecret: env("TPF_WORKER_SHARED_SECRET") });
  const port = await server.start(values.host, Number(values.port));
  const endpoint = values.advertise ?? `${values.host}:${port}`;
  const registry = new RegistryClient({ target: values.registry, token: env("TPF_WORKER_REGISTRY_TOKEN") });
  const registration = new WorkerRegistration(
    registry,
    { tenantId: values.tenant, workerId: values["worker-id"], endpoint, identity: runtime.identity },
    Number(values["heartbeat-ms"]),
  );
  await registration.start();
  process.stdout.write(`${JSON.stringify({ event: "worker-ready", port, endpoint })}\n`);
  const stop = async (): Promise<void> => {
    registration.stop();
    registry.close();
    await server.stop();
    process.exit(0);
  };
  process.once("SIGTERM", () => void stop());
  process.once("SIGINT", () => void stop());
}

async function main(argv: string[]): Promise<void> {
  const [command, ...rest] = argv;
  if (command === "describe") {
    process.stdout.write(`${JSON.stringify(pipeline.describe())}\n`);
  } else if (command === "serve") {
    await serve(rest);
  } else {
    throw new Error("usage: orders-worker.js describe | serve …");
  }
}

main(process.argv.slice(2)).catch((error: unknown) => {
  process.stderr.write(`${JSON.stringify({ error: String(error) })}\n`);
  process.exit(1);
});
