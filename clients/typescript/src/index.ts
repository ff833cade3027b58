// @tpf/coordinator-client: typed gRPC clients of the TPF coordinator suite, and a worker SDK
// speaking TPF's gRPC worker protocol. Generated messages are under `./gen/...`.
export { CoordinatorClient, DEFAULT_WATCH_DEADLINE_MS } from "./coordinator.js";
export { RegistryClient, type ReleaseCalls, type WorkerCalls } from "./registry.js";
export { Code, TpfError, codeName, toTpfError } from "./errors.js";
export {
  DEFAULT_DEADLINE_MS,
  createTransport,
  pem,
  type CallOptions,
  type ClientOptions,
  type RetryOptions,
  type TlsOptions,
  type TpfTransport,
} from "./options.js";
export { newRequestId } from "./retry.js";
export {
  DEFAULT_ALLOWED_PREFIXES,
  EnvelopeError,
  TRANSITION_ENCODING,
  application,
  decode,
  encode,
  type Envelope,
  type Json,
} from "./envelope.js";
export {
  NonRetryableStepError,
  Pipeline,
  WorkerRuntime,
  type AwaitOptions,
  type PipelineDescription,
  type StepContext,
  type StepFunction,
  type StepTypes,
  type WorkerIdentity,
} from "./worker/pipeline.js";
export { WorkerServer, type WorkerServerOptions } from "./worker/server.js";
export { WorkerRegistration, type Announcement } from "./worker/registration.js";
export { Verifier, SignatureRejected, sign, signature, parseInstant, javaInstant } from "./worker/signing.js";
export { ExecutionStatus } from "./gen/tpf/common/v1/execution_status_pb.js";
export { InputShape } from "./gen/tpf/coordinator/v1/execution_pb.js";
