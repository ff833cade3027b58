// Errors of the suite's services as one type: the gRPC code plus the google.rpc.ErrorInfo every
// error carries in `grpc-status-details-bin` (reason, domain, metadata). Branch on `reason`,
// never on the message text.
import { Code, ConnectError } from "@connectrpc/connect";

import { ErrorInfoSchema } from "./gen/google/rpc/error_details_pb.js";

export { Code };

export class TpfError extends Error {
  override readonly name = "TpfError";

  constructor(
    /** The gRPC status code (Connect's `Code` enum has gRPC's numbers). */
    readonly code: Code,
    /** The status message as the server wrote it (for people, not for branching). */
    readonly details: string,
    /** ErrorInfo.reason, e.g. `EXECUTION_NOT_FOUND`; empty when the error carried none. */
    readonly reason: string,
    /** ErrorInfo.domain, e.g. `tpf.coordinator`. */
    readonly domain: string,
    /** ErrorInfo.metadata: the values the reason refers to (ids, versions, fields). */
    readonly metadata: Readonly<Record<string, string>>,
    options?: { cause?: unknown },
  ) {
    super(`${codeName(code)}${reason ? ` ${reason}` : ""}: ${details}`, options);
  }

  /** gRPC's name of the code: `NOT_FOUND`, `UNAUTHENTICATED`, … */
  get codeName(): string {
    return codeName(this.code);
  }

  /** A plain object for logs and JSON output. */
  toJSON(): Record<string, unknown> {
    return {
      code: this.code,
      codeName: this.codeName,
      details: this.details,
      reason: this.reason,
      domain: this.domain,
      metadata: this.metadata,
    };
  }
}

/** gRPC's upper-snake name of a status code (Connect names them in lowerCamel). */
export function codeName(code: Code): string {
  const name = Code[code] ?? "UNKNOWN";
  return name.replace(/([a-z])([A-Z])/g, "$1_$2").toUpperCase();
}

/** Any error thrown by a call, as a TpfError (transport failures included). */
export function toTpfError(error: unknown): TpfError {
  if (error instanceof TpfError) {
    return error;
  }
  const connect = ConnectError.from(error);
  const [info] = connect.findDetails(ErrorInfoSchema);
  return new TpfError(
    connect.code,
    connect.rawMessage,
    info?.reason ?? "",
    info?.domain ?? "",
    { ...(info?.metadata ?? {}) },
    { cause: error },
  );
}
