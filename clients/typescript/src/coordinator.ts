// Typed client of the coordinator (:50051): executions, interactions and dead letters. Every
// call has a deadline, carries the bearer token, retries UNAVAILABLE, and throws TpfError.
import type { DescMessage, MessageInitShape } from "@bufbuild/protobuf";
import { createClient, type Client } from "@connectrpc/connect";

import {
  DeadLetterService,
  type ListDeadLettersRequestSchema,
  type ListDeadLettersResponse,
  type RedriveExecutionRequestSchema,
  type RedriveExecutionResponse,
} from "./gen/tpf/coordinator/v1/dead_letter_service_pb.js";
import {
  ExecutionService,
  type CancelExecutionRequestSchema,
  type CancelExecutionResponse,
  type GetExecutionResultResponse,
  type ListExecutionHistoryRequestSchema,
  type ListExecutionHistoryResponse,
  type ListExecutionsRequestSchema,
  type ListExecutionsResponse,
  type SubmitExecutionRequestSchema,
  type SubmitExecutionResponse,
  type WatchExecutionRequestSchema,
  type WatchExecutionResponse,
} from "./gen/tpf/coordinator/v1/execution_service_pb.js";
import type { Execution } from "./gen/tpf/coordinator/v1/execution_pb.js";
import {
  InteractionService,
  type CompleteInteractionRequestSchema,
  type CompleteInteractionResponse,
  type ListPendingInteractionsRequestSchema,
  type ListPendingInteractionsResponse,
} from "./gen/tpf/coordinator/v1/interaction_service_pb.js";
import { toTpfError } from "./errors.js";
import { createTransport, type CallOptions, type ClientOptions, type TpfTransport } from "./options.js";
import { newRequestId, withRetries } from "./retry.js";

type Init<Schema extends DescMessage> = MessageInitShape<Schema>;

/** Streams have no natural end while an execution waits; bound them anyway. Default 5 minutes. */
export const DEFAULT_WATCH_DEADLINE_MS = 5 * 60 * 1000;

export class CoordinatorClient {
  /** The generated Connect clients, for calls this class does not wrap. */
  readonly executions: Client<typeof ExecutionService>;
  readonly interactions: Client<typeof InteractionService>;
  readonly deadLetters: Client<typeof DeadLetterService>;
  private readonly options: ClientOptions;
  private readonly connection: TpfTransport;

  /** `transport` shares one connection between clients; by default each opens its own. */
  constructor(options: ClientOptions, transport: TpfTransport = createTransport(options)) {
    this.options = options;
    this.connection = transport;
    this.executions = createClient(ExecutionService, transport.transport);
    this.interactions = createClient(InteractionService, transport.transport);
    this.deadLetters = createClient(DeadLetterService, transport.transport);
  }

  /** Closes the connection; calls in flight fail. */
  close(): void {
    this.connection.close();
  }

  private call<T>(attempt: (options: { timeoutMs?: number; signal?: AbortSignal }) => Promise<T>, call?: CallOptions): Promise<T> {
    const options = {
      ...(call?.deadlineMs !== undefined ? { timeoutMs: call.deadlineMs } : {}),
      ...(call?.signal !== undefined ? { signal: call.signal } : {}),
    };
    return withRetries(() => attempt(options), this.options.retry, call?.signal);
  }

  /** SubmitExecution. A request id is added when absent, so a retried submit runs once. */
  submit(request: Init<typeof SubmitExecutionRequestSchema>, call?: CallOptions): Promise<SubmitExecutionResponse> {
    const withId = { ...request, requestId: request.requestId || newRequestId() };
    return this.call((options) => this.executions.submitExecution(withId, options), call);
  }

  async get(tenantId: string, executionId: string, call?: CallOptions): Promise<Execution> {
    const response = await this.call((options) => this.executions.getExecution({ tenantId, executionId }, options), call);
    if (response.execution === undefined) {
      throw new Error(`GetExecution answered no execution for ${executionId}`);
    }
    return response.execution;
  }

  /** GetExecutionResult: FAILED_PRECONDITION / RESULT_NOT_READY until the execution SUCCEEDED. */
  result(tenantId: string, executionId: string, call?: CallOptions): Promise<GetExecutionResultResponse> {
    return this.call((options) => this.executions.getExecutionResult({ tenantId, executionId }, options), call);
  }

  list(request: Init<typeof ListExecutionsRequestSchema>, call?: CallOptions): Promise<ListExecutionsResponse> {
    return this.call((options) => this.executions.listExecutions(request, options), call);
  }

  history(request: Init<typeof ListExecutionHistoryRequestSchema>, call?: CallOptions): Promise<ListExecutionHistoryResponse> {
    return this.call((options) => this.executions.listExecutionHistory(request, options), call);
  }

  cancel(request: Init<typeof CancelExecutionRequestSchema>, call?: CallOptions): Promise<CancelExecutionResponse> {
    return this.call((options) => this.executions.cancelExecution(request, options), call);
  }

  /**
   * WatchExecution: the current state, then each new one, ending after a terminal status. The
   * deadline bounds the whole stream (DEFAULT_WATCH_DEADLINE_MS unless given); streams are not
   * retried: watch again with `afterVersion` set to the last version seen.
   */
  async *watch(request: Init<typeof WatchExecutionRequestSchema>, call?: CallOptions): AsyncGenerator<WatchExecutionResponse> {
    // Connect does not cancel a stream whose reader stops early, and keeps its deadline timer
    // running: a reader that breaks out of the loop cancels the call here.
    const controller = new AbortController();
    const onAbort = (): void => controller.abort(call?.signal?.reason);
    call?.signal?.addEventListener("abort", onAbort, { once: true });
    const stream = this.executions.watchExecution(request, {
      timeoutMs: call?.deadlineMs ?? DEFAULT_WATCH_DEADLINE_MS,
      signal: controller.signal,
    });
    const iterator = stream[Symbol.asyncIterator]();
    let finished = false;
    try {
      for (;;) {
        const next = await iterator.next();
        if (next.done) {
          finished = true;
          return;
        }
        yield next.value;
      }
    } catch (error) {
      finished = true;
      throw toTpfError(error);
    } finally {
      call?.signal?.removeEventListener("abort", onAbort);
      if (!finished) {
        controller.abort();
        // Reading the cancelled stream once more lets Connect clear its deadline timer.
        await iterator.next().catch(() => undefined);
      }
    }
  }

  pendingInteractions(
    request: Init<typeof ListPendingInteractionsRequestSchema>,
    call?: CallOptions,
  ): Promise<ListPendingInteractionsResponse> {
    return this.call((options) => this.interactions.listPendingInteractions(request, options), call);
  }

  /** CompleteInteraction (naturally idempotent: a repeat answers `duplicate = true`). */
  complete(request: Init<typeof CompleteInteractionRequestSchema>, call?: CallOptions): Promise<CompleteInteractionResponse> {
    return this.call((options) => this.interactions.completeInteraction(request, options), call);
  }

  listDeadLetters(request: Init<typeof ListDeadLettersRequestSchema>, call?: CallOptions): Promise<ListDeadLettersResponse> {
    return this.call((options) => this.deadLetters.listDeadLetters(request, options), call);
  }

  /** RedriveExecution. A request id is added when absent, so a retried redrive runs once. */
  redrive(request: Init<typeof RedriveExecutionRequestSchema>, call?: CallOptions): Promise<RedriveExecutionResponse> {
    const withId = { ...request, requestId: request.requestId || newRequestId() };
    return this.call((options) => this.deadLetters.redriveExecution(withId, options), call);
  }
}
