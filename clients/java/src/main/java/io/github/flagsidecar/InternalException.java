package io.github.flagsidecar;

import io.grpc.Status;

/** A bug in the sidecar (INTERNAL or UNKNOWN); the sidecar's log has the details. */
public class InternalException extends FlagSidecarException {
  private static final long serialVersionUID = 1L;

  InternalException(Status.Code code, String message, Throwable cause, long accepted) {
    super(code, message, cause, accepted);
  }
}
