package io.github.flagsidecar;

import io.grpc.Status;

/**
 * The request was refused as malformed (INVALID_ARGUMENT): an empty flag key, a context key
 * starting with "$", a list or map in the context, a key over a limit, an event without a name;
 * also a value protobuf cannot carry, refused before sending.
 */
public class InvalidArgumentException extends FlagSidecarException {
  private static final long serialVersionUID = 1L;

  InvalidArgumentException(String message, Throwable cause, long accepted) {
    super(Status.Code.INVALID_ARGUMENT, message, cause, accepted);
  }
}
