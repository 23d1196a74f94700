import {
  credentials as grpcCredentials,
  Metadata,
  status,
  type CallOptions as GrpcCallOptions,
  type ChannelCredentials,
  type ChannelOptions,
  type ServiceError,
} from "@grpc/grpc-js";

import {
  ErrorCode,
  EvaluationServiceClient,
  Reason,
  type EvaluateAllResponse,
  type EvaluateResponse,
  type Evaluation as EvaluationMessage,
  type StackTrace,
  type User as UserMessage,
} from "./gen/flagsidecar/v1/evaluation";
import { EventServiceClient, type TrackRequest, type TrackResponse } from "./gen/flagsidecar/v1/event";
import { errorOf, FlagSidecarError, fromServiceError } from "./errors";
import { structOf, type JsonValue } from "./json";

/**
 * The deadline of a call that sets none, in milliseconds. The sidecar answers on the same host,
 * so a call that takes longer means something is wrong: fail instead of hanging.
 */
export const DEFAULT_TIMEOUT_MS = 1000;

/** Why a variant was served; what went wrong (OpenFeature's names, as in the proto). */
export type ReasonName = keyof typeof Reason;
export type ErrorCodeName = keyof typeof ErrorCode;
export type { StackTrace };

/**
 * The subject of an evaluation. Context values are JSON scalars (string, boolean, number, null);
 * the sidecar refuses lists and objects, and keys starting with "$".
 */
export interface User {
  id?: string;
  context?: Readonly<Record<string, unknown>>;
}

/** The answer for one flag. */
export interface Evaluation {
  flagKey: string;
  /**
   * The served variant's value as JSON.parse would give it; undefined when there is none (an
   * error, or a flag with no default for this case: use your code default), which differs from null.
   */
  value: JsonValue | undefined;
  /** The served variant's key; "" when none. */
  variant: string;
  reason: ReasonName;
  errorCode: ErrorCodeName;
  errorMessage: string;
  flagVersion: number;
  /** Every step of the evaluation when the call asked for `debug`. */
  trace: StackTrace[];
}

/** An application's own tracking event ("checkout-completed"), for `track`. */
export interface TrackEvent {
  name: string;
  user?: User;
  details?: Readonly<Record<string, unknown>>;
}

export interface ClientOptions {
  /** The deadline of calls that set none (default DEFAULT_TIMEOUT_MS; 0 or less: no deadline). */
  timeoutMs?: number;
  /** Default: plaintext, as the sidecar serves by default. */
  credentials?: ChannelCredentials;
  /** grpc-js channel options ("grpc.keepalive_time_ms", ...). */
  channelOptions?: ChannelOptions;
}

/** Settings of one call. */
export interface CallSettings {
  /** This call's deadline, instead of the client's timeoutMs (0 or less: none). */
  timeoutMs?: number;
  /** Cancels the call: it then fails with CancelledError. */
  signal?: AbortSignal;
}

export interface EvaluateOptions extends CallSettings {
  /** Ask for the evaluation's trace (Evaluation.trace), with the bucket of a split. */
  debug?: boolean;
}

export interface EvaluateAllOptions extends EvaluateOptions {
  /** Only these flags (an unknown one is reported in the list); default every flag. */
  flagKeys?: readonly string[];
}

/** What the callback-style generated stubs return: a call that can be cancelled. */
interface Cancellable {
  cancel(): void;
}

/**
 * Calls one sidecar: `new Client("127.0.0.1:50051")` over TCP, `new Client("unix:///abs/path")`
 * (also "unix:relative/path") over a Unix socket. It connects on the first call, which fails with
 * UnavailableError when it cannot. One client serves any number of concurrent calls: create one,
 * share it, close() it at the end.
 */
export class Client {
  private readonly evaluations: EvaluationServiceClient;
  private readonly events: EventServiceClient;
  private readonly timeoutMs: number;
  private closed = false;

  constructor(target: string, options: ClientOptions = {}) {
    const credentials = options.credentials ?? grpcCredentials.createInsecure();
    this.evaluations = new EvaluationServiceClient(target, credentials, options.channelOptions);
    // Both services on one channel, so one connection.
    this.events = new EventServiceClient(target, credentials, {
      ...options.channelOptions,
      channelOverride: this.evaluations.getChannel(),
    });
    this.timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  }

  /**
   * Closes the connection: a call still running may fail with UnavailableError, later ones fail
   * with CancelledError.
   */
  close(): void {
    this.closed = true;
    this.evaluations.close();
  }

  /** Evaluates one flag for a user. An unknown flag is FlagNotFoundError. */
  async evaluate(flagKey: string, user: User = {}, options: EvaluateOptions = {}): Promise<Evaluation> {
    const request = { flagKey, user: userMessage(user), debug: options.debug ?? false };
    const response = await this.invoke<EvaluateResponse>(options, (grpcOptions, done) =>
      this.evaluations.evaluate(request, new Metadata(), grpcOptions, done),
    );
    if (response.evaluation === undefined) {
      throw errorOf(status.INTERNAL, "the sidecar answered without an evaluation");
    }
    return evaluationOf(response.evaluation);
  }

  /**
   * Evaluates every flag (or those of `flagKeys`) for a user, sorted by key. A flag that fails is
   * an entry with reason "ERROR"; the call does not fail for it.
   */
  async evaluateAll(user: User = {}, options: EvaluateAllOptions = {}): Promise<Evaluation[]> {
    const request = {
      user: userMessage(user),
      flagKeys: [...(options.flagKeys ?? [])],
      debug: options.debug ?? false,
    };
    const response = await this.invoke<EvaluateAllResponse>(options, (grpcOptions, done) =>
      this.evaluations.evaluateAll(request, new Metadata(), grpcOptions, done),
    );
    return response.evaluations.map(evaluationOf);
  }

  /**
   * Sends events on one stream, in order, and resolves to how many the sidecar accepted. When the
   * stream fails (an event without a name is InvalidArgumentError; full buffers are
   * ResourceExhaustedError), the error's `accepted` still counts the events before the refused
   * one: send the others again.
   */
  async track(events: Iterable<TrackEvent>, options: CallSettings = {}): Promise<number> {
    const messages: TrackRequest[] = [...events].map((event) => ({
      name: event.name,
      user: userMessage(event.user ?? {}),
      details: structOf(event.details, "event details"),
    }));
    try {
      const response = await this.invoke<TrackResponse>(options, (grpcOptions, done) => {
        const call = this.events.track(new Metadata(), grpcOptions, done);
        // All written before any answer can arrive, so never after the stream has ended.
        for (const message of messages) {
          call.write(message);
        }
        call.end();
        return call;
      });
      return response.accepted;
    } catch (error) {
      if (error instanceof FlagSidecarError) {
        const [count] = error.metadata.get("accepted-count");
        error.accepted = count === undefined ? 0 : Number(count);
      }
      throw error;
    }
  }

  /** Runs one call (unary or client stream) with its deadline and signal, as a promise of its response. */
  private invoke<Response>(
    settings: CallSettings,
    start: (
      options: Partial<GrpcCallOptions>,
      done: (error: ServiceError | null, response: Response) => void,
    ) => Cancellable,
  ): Promise<Response> {
    const { signal } = settings;
    if (this.closed) {
      // grpc-js would throw a plain Error; grpc-go says CANCELLED for a closed connection too.
      return Promise.reject(errorOf(status.CANCELLED, "the client is closed"));
    }
    if (signal?.aborted) {
      return Promise.reject(errorOf(status.CANCELLED, "aborted before the call", undefined, signal.reason));
    }
    const timeoutMs = settings.timeoutMs ?? this.timeoutMs;
    const options = timeoutMs > 0 ? { deadline: Date.now() + timeoutMs } : {};
    return new Promise((resolve, reject) => {
      const call = start(options, (error, response) => {
        signal?.removeEventListener("abort", cancel);
        if (error) {
          reject(fromServiceError(error));
        } else {
          resolve(response);
        }
      });
      const cancel = () => call.cancel();
      signal?.addEventListener("abort", cancel, { once: true });
    });
  }
}

function userMessage(user: User): UserMessage {
  return { id: user.id ?? "", context: structOf(user.context, "user context") };
}

function evaluationOf(message: EvaluationMessage): Evaluation {
  return {
    flagKey: message.flagKey,
    value: message.value as JsonValue | undefined,
    variant: message.variant,
    reason: nameOf(Reason, message.reason),
    errorCode: nameOf(ErrorCode, message.errorCode),
    errorMessage: message.errorMessage,
    flagVersion: message.flagVersion,
    trace: message.stackTrace,
  };
}

/** An enum value's name; UNRECOGNIZED for one newer than this client's proto. */
function nameOf<E extends Record<string, string | number>>(values: E, value: number): keyof E {
  const name = (values as Record<number, string>)[value];
  return name === undefined ? "UNRECOGNIZED" : name;
}
