// A small client for flag-sidecar's native gRPC API (flagsidecar.v1): EvaluationService and
// EventService over @grpc/grpc-js. The generated code is under ./gen (`make proto`).
export {
  Client,
  DEFAULT_TIMEOUT_MS,
  type CallSettings,
  type ClientOptions,
  type ErrorCodeName,
  type EvaluateAllOptions,
  type EvaluateOptions,
  type Evaluation,
  type ReasonName,
  type StackTrace,
  type TrackEvent,
  type User,
} from "./client";
export { BUCKET_COUNT, bucket, bucketText } from "./bucket";
export {
  CancelledError,
  DeadlineExceededError,
  FlagNotFoundError,
  FlagSidecarError,
  InternalError,
  InvalidArgumentError,
  ResourceExhaustedError,
  UnavailableError,
} from "./errors";
export type { JsonValue } from "./json";
export { status } from "@grpc/grpc-js";
