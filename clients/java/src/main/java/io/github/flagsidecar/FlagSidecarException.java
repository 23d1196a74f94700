package io.github.flagsidecar;

import io.grpc.Metadata;
import io.grpc.Status;
import io.grpc.StatusRuntimeException;

/**
 * A failed call: the gRPC status code and message, with the original {@link
 * StatusRuntimeException} as the cause. A subclass says which kind of failure it is; a status code
 * with no subclass of its own is this class.
 */
public class FlagSidecarException extends RuntimeException {
  private static final long serialVersionUID = 1L;
  private static final Metadata.Key<String> ACCEPTED_COUNT =
      Metadata.Key.of("accepted-count", Metadata.ASCII_STRING_MARSHALLER);

  private final Status.Code code;
  private final long accepted;

  FlagSidecarException(Status.Code code, String message, Throwable cause, long accepted) {
    super(message, cause);
    this.code = code;
    this.accepted = accepted;
  }

  /** The gRPC status code of the failure. */
  public Status.Code code() {
    return code;
  }

  /**
   * For {@link FlagSidecarClient#track}: how many of the first events the sidecar accepted before
   * the call failed (send the others again); 0 for other calls.
   */
  public long acceptedEvents() {
    return accepted;
  }

  /** The exception of a failed call of a generated stub. */
  static FlagSidecarException of(StatusRuntimeException error) {
    Status status = error.getStatus();
    long accepted = acceptedCount(error.getTrailers());
    String message = status.getCode() + ": " + status.getDescription();
    return switch (status.getCode()) {
      case NOT_FOUND -> new FlagNotFoundException(message, error);
      case INVALID_ARGUMENT -> new InvalidArgumentException(message, error, accepted);
      case RESOURCE_EXHAUSTED -> new ResourceExhaustedException(message, error, accepted);
      case UNAVAILABLE -> new UnavailableException(message, error, accepted);
      case DEADLINE_EXCEEDED -> new DeadlineExceededException(message, error, accepted);
      case INTERNAL, UNKNOWN -> new InternalException(status.getCode(), message, error, accepted);
      default -> new FlagSidecarException(status.getCode(), message, error, accepted);
    };
  }

  private static long acceptedCount(Metadata trailers) {
    String count = trailers == null ? null : trailers.get(ACCEPTED_COUNT);
    if (count == null) {
      return 0;
    }
    try {
      return Long.parseLong(count.trim());
    } catch (NumberFormatException malformed) {
      return 0;
    }
  }
}
