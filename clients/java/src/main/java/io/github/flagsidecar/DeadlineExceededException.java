package io.github.flagsidecar;

import io.grpc.Status;

/**
 * The call's deadline passed (DEADLINE_EXCEEDED): the client's timeout, 1 s unless configured.
 */
public class DeadlineExceededException extends FlagSidecarException {
  private static final long serialVersionUID = 1L;

  DeadlineExceededException(String message, Throwable cause, long accepted) {
    super(Status.Code.DEADLINE_EXCEEDED, message, cause, accepted);
  }
}
