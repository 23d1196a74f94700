import { Metadata, status, type ServiceError } from "@grpc/grpc-js";

/**
 * A failed call: its gRPC status `code` (a grpc-js `status` value) and the sidecar's `details`.
 * Each code the sidecar uses has its own subclass, for `instanceof`; any other code is this class.
 */
export class FlagSidecarError extends Error {
  override name = "FlagSidecarError";
  /** When `track` failed: how many of the first events were accepted (send the others again). */
  accepted?: number;

  constructor(
    readonly code: status,
    readonly details: string,
    readonly metadata: Metadata = new Metadata(),
    options?: { cause?: unknown },
  ) {
    super(details || status[code], options);
  }
}

/** NOT_FOUND: `evaluate` named a flag the loaded set does not have. */
export class FlagNotFoundError extends FlagSidecarError {
  override name = "FlagNotFoundError";
}

/**
 * INVALID_ARGUMENT: an empty flag key, a context key starting with "$", a list or object in the
 * context, a key over a limit, an event without a name; also a value protobuf cannot carry,
 * refused before sending.
 */
export class InvalidArgumentError extends FlagSidecarError {
  override name = "InvalidArgumentError";
}

/** RESOURCE_EXHAUSTED: over a limit of the sidecar, or `track` found the event buffer and spool full. */
export class ResourceExhaustedError extends FlagSidecarError {
  override name = "ResourceExhaustedError";
}

/** UNAVAILABLE: no sidecar at the target, or it has no flag set loaded yet. */
export class UnavailableError extends FlagSidecarError {
  override name = "UnavailableError";
}

/** INTERNAL or UNKNOWN: a bug in the sidecar (its log has the details). */
export class InternalError extends FlagSidecarError {
  override name = "InternalError";
}

/** DEADLINE_EXCEEDED: the call's deadline passed. */
export class DeadlineExceededError extends FlagSidecarError {
  override name = "DeadlineExceededError";
}

/** CANCELLED: the call's AbortSignal fired, or the client was closed before the call. */
export class CancelledError extends FlagSidecarError {
  override name = "CancelledError";
}

type ErrorClass = new (...args: ConstructorParameters<typeof FlagSidecarError>) => FlagSidecarError;

const classes: Partial<Record<status, ErrorClass>> = {
  [status.NOT_FOUND]: FlagNotFoundError,
  [status.INVALID_ARGUMENT]: InvalidArgumentError,
  [status.RESOURCE_EXHAUSTED]: ResourceExhaustedError,
  [status.UNAVAILABLE]: UnavailableError,
  [status.INTERNAL]: InternalError,
  [status.UNKNOWN]: InternalError,
  [status.DEADLINE_EXCEEDED]: DeadlineExceededError,
  [status.CANCELLED]: CancelledError,
};

/** The error of a status code: the subclass for it, or FlagSidecarError. */
export function errorOf(
  code: status,
  details: string,
  metadata?: Metadata,
  cause?: unknown,
): FlagSidecarError {
  const ErrorOfCode = classes[code] ?? FlagSidecarError;
  return new ErrorOfCode(code, details, metadata, { cause });
}

/** A grpc-js ServiceError as one of ours. */
export function fromServiceError(error: ServiceError): FlagSidecarError {
  return errorOf(error.code, error.details, error.metadata, error);
}

/** A request refused before it is sent (a value protobuf cannot carry). */
export function invalid(details: string): InvalidArgumentError {
  return new InvalidArgumentError(status.INVALID_ARGUMENT, details);
}
