package io.github.flagsidecar;

import io.grpc.Status;

/**
 * Over a limit of the sidecar (RESOURCE_EXHAUSTED), or track's event buffer and spool are full:
 * send the rest again after a pause ({@link #acceptedEvents()} says how many got in).
 */
public class ResourceExhaustedException extends FlagSidecarException {
  private static final long serialVersionUID = 1L;

  ResourceExhaustedException(String message, Throwable cause, long accepted) {
    super(Status.Code.RESOURCE_EXHAUSTED, message, cause, accepted);
  }
}
