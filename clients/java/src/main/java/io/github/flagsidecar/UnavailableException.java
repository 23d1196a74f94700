package io.github.flagsidecar;

import io.grpc.Status;

/**
 * The sidecar cannot be reached, or has no flag set loaded yet (UNAVAILABLE).
 */
public class UnavailableException extends FlagSidecarException {
  private static final long serialVersionUID = 1L;

  UnavailableException(String message, Throwable cause, long accepted) {
    super(Status.Code.UNAVAILABLE, message, cause, accepted);
  }
}
