// A small command line over the typed clients: each command prints one JSON line on stdout, or
// `{"error": {code, codeName, reason, domain, metadata, details}}` on stderr and exits 1.
//
//   node dist/examples/tpf.js <command> --target 127.0.0.1:50051 [--token T | $TPF_TOKEN]
//       [--ca ca.pem [--cert c.pem --key k.pem]] [--deadline-ms 10000] --tenant T …
//
// Coordinator: submit, get, watch, result, history, list, pending, complete, cancel, dlq, redrive.
// Registry (--target :50052): releases, active-release, workers.
import { toJson, type DescMessage, type MessageShape } from "@bufbuild/protobuf";
import { parseArgs } from "node:util";

import {
  CoordinatorClient,
  ExecutionStatus,
  InputShape,
  RegistryClient,
  application,
  decode,
  encode,
  pem,
  toTpfError,
  type ClientOptions,
  type Json,
} from "../src/index.js";
import { DeadLetterSchema } from "../src/gen/tpf/coordinator/v1/dead_letter_pb.js";
import { ExecutionSchema, HistoryEntrySchema } from "../src/gen/tpf/coordinator/v1/execution_pb.js";
import { InteractionSchema } from "../src/gen/tpf/coordinator/v1/interaction_pb.js";
import { ReleaseSchema } from "../src/gen/tpf/registry/v1/release_pb.js";
import { WorkerSchema } from "../src/gen/tpf/registry/v1/worker_pb.js";

const OPTIONS = {
  target: { type: "string" },
  token: { type: "string" },
  ca: { type: "string" },
  cert: { type: "string" },
  key: { type: "string" },
  "deadline-ms": { type: "string" },
  tenant: { type: "string" },
  pipeline: { type: "string" },
  execution: { type: "string" },
  interaction: { type: "string" },
  type: { type: "string" },
  input: { type: "string" },
  response: { type: "string" },
  "idempotency-key": { type: "string" },
  "expected-version": { type: "string" },
  "allow-failed": { type: "boolean" },
  replace: { type: "string" },
  reason: { type: "string" },
  until: { type: "string" },
} as const;

type Values = ReturnType<typeof parseArgs<{ options: typeof OPTIONS }>>["values"];

function required(values: Values, name: keyof Values): string {
  const value = values[name];
  if (typeof value !== "string" || !value) throw new Error(`--${name} is required`);
  return value;
}

function clientOptions(values: Values): ClientOptions {
  const token = values.token ?? process.env.TPF_TOKEN;
  return {
    target: required(values, "target"),
    ...(token ? { token } : {}),
    ...(values.ca ? { tls: { ca: pem(values.ca), ...(values.cert && values.key ? { cert: pem(values.cert), key: pem(values.key) } : {}) } } : {}),
    ...(values["deadline-ms"] ? { deadlineMs: Number(values["deadline-ms"]) } : {}),
  };
}

function json<Desc extends DescMessage>(schema: Desc, message: MessageShape<Desc>): unknown {
  return toJson(schema, message);
}

function statusName(status: ExecutionStatus): string {
  return `EXECUTION_STATUS_${ExecutionStatus[status]}`;
}

const TERMINAL = new Set([ExecutionStatus.SUCCEEDED, ExecutionStatus.FAILED, ExecutionStatus.DLQ, ExecutionStatus.CANCELLED]);

async function coordinator(command: string, values: Values): Promise<unknown> {
  const client = new CoordinatorClient(clientOptions(values));
  try {
    return await coordinatorCall(client, command, values);
  } finally {
    client.close();
  }
}

async function coordinatorCall(client: CoordinatorClient, command: string, values: Values): Promise<unknown> {
  const tenantId = required(values, "tenant");
  switch (command) {
    case "submit": {
      const input = JSON.parse(required(values, "input")) as Json;
      const response = await client.submit({
        tenantId,
        pipelineId: required(values, "pipeline"),
        inputShape: InputShape.UNI,
        inputPayload: values.type ? application(values.type, input) : encode(input),
        idempotencyKey: values["idempotency-key"] ?? "",
      });
      return { executionId: response.executionId, duplicate: response.duplicate };
    }
    case "get":
      return json(ExecutionSchema, await client.get(tenantId, required(values, "execution")));
    case "watch": {
      // Follows the execution until it reaches --until (a status name) or a terminal status.
      const until = values.until ? `EXECUTION_STATUS_${values.until.replace(/^EXECUTION_STATUS_/, "")}` : undefined;
      let last: unknown;
      for await (const update of client.watch({ tenantId, executionId: required(values, "execution") })) {
        const execution = update.execution;
        if (execution === undefined) continue;
        last = json(ExecutionSchema, execution);
        if (statusName(execution.status) === until || TERMINAL.has(execution.status)) break;
      }
      return last;
    }
    case "result": {
      const response = await client.result(tenantId, required(values, "execution"));
      return { status: statusName(response.status?.status ?? ExecutionStatus.UNSPECIFIED), result: response.resultPayload ? decode(response.resultPayload) : null };
    }
    case "history": {
      const response = await client.history({ tenantId, executionId: required(values, "execution") });
      return response.historyEntries.map((entry) => json(HistoryEntrySchema, entry));
    }
    case "list": {
      const response = await client.list({ tenantId, pipelineId: values.pipeline ?? "" });
      return response.executions.map((execution) => json(ExecutionSchema, execution));
    }
    case "pending": {
      const response = await client.pendingInteractions({ tenantId });
      return response.interactions.map((interaction) => json(InteractionSchema, interaction));
    }
    case "complete": {
      const response = await client.complete({
        tenantId,
        interactionId: required(values, "interaction"),
        responsePayload: encode(JSON.parse(required(values, "response")) as Json),
      });
      return { interactionId: response.interactionId, executionId: response.executionId, duplicate: response.duplicate };
    }
    case "cancel": {
      const response = await client.cancel({ tenantId, executionId: required(values, "execution"), reason: values.reason ?? "" });
      return { previousStatus: statusName(response.previousStatus), duplicate: response.duplicate };
    }
    case "dlq": {
      const response = await client.listDeadLetters({ tenantId });
      return response.deadLetters.map((letter) => json(DeadLetterSchema, letter));
    }
    case "redrive": {
      const expected = values["expected-version"];
      const response = await client.redrive({
        tenantId,
        executionId: required(values, "execution"),
        ...(expected !== undefined ? { expectedVersion: BigInt(expected) } : {}),
        ...(values.reason ? { reason: values.reason } : {}),
        allowFailed: values["allow-failed"] ?? false,
        ...(values.replace ? { replacementInput: encode(JSON.parse(values.replace) as Json) } : {}),
      });
      return { executionId: response.executionId, previousStatus: statusName(response.previousStatus), status: statusName(response.status) };
    }
    default:
      throw new Error(`unknown command ${command}`);
  }
}

async function registry(command: string, values: Values): Promise<unknown> {
  const client = new RegistryClient(clientOptions(values));
  try {
    return await registryCall(client, command, values);
  } finally {
    client.close();
  }
}

async function registryCall(client: RegistryClient, command: string, values: Values): Promise<unknown> {
  const tenantId = required(values, "tenant");
  const pipelineId = required(values, "pipeline");
  switch (command) {
    case "releases":
      return (await client.releases.list({ tenantId, pipelineId })).releases.map((release) => json(ReleaseSchema, release));
    case "active-release": {
      const release = (await client.releases.active({ tenantId, pipelineId })).release;
      return release ? json(ReleaseSchema, release) : null;
    }
    case "workers":
      return (await client.workers.list({ tenantId, pipelineId })).workers.map((worker) => json(WorkerSchema, worker));
    default:
      throw new Error(`unknown command ${command}`);
  }
}

async function main(argv: string[]): Promise<void> {
  const [command = "", ...rest] = argv;
  const { values } = parseArgs({ args: rest, options: OPTIONS });
  const run = ["releases", "active-release", "workers"].includes(command) ? registry : coordinator;
  const output = await run(command, values);
  process.stdout.write(`${JSON.stringify(output, (_, value: unknown) => (typeof value === "bigint" ? value.toString() : value))}\n`);
}

main(process.argv.slice(2)).catch((thrown: unknown) => {
  const error = toTpfError(thrown);
  const body = thrown instanceof Error && error.codeName === "UNKNOWN" && !error.reason ? { message: thrown.message } : error.toJSON();
  process.stderr.write(`${JSON.stringify({ error: body })}\n`);
  process.exit(1);
});
