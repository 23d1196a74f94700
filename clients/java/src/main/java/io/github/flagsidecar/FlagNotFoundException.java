package io.github.flagsidecar;

import io.grpc.Status;

/** evaluate named a flag the loaded flag set does not have (NOT_FOUND). */
public class FlagNotFoundException extends FlagSidecarException {
  private static final long serialVersionUID = 1L;

  FlagNotFoundException(String message, Throwable cause) {
    super(Status.Code.NOT_FOUND, message, cause, 0);
  }
}
