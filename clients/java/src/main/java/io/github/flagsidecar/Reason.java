package io.github.flagsidecar;

/** Why a variant was served (OpenFeature's resolution reasons). */
public enum Reason {
  /** The flag has no rules: its on-default is served. */
  STATIC,
  /** No rule matched: the on-default is served. */
  DEFAULT,
  /** A rule matched and serves a single variant. */
  TARGETING_MATCH,
  /** A rule matched and split its users between variants. */
  SPLIT,
  /** The flag is disabled: the off-default is served. */
  DISABLED,
  /** The evaluation failed: see {@link Evaluation#errorCode()}. */
  ERROR,
  /** A reason this version of the client does not know (a newer sidecar), or none. */
  UNKNOWN;

  static Reason of(flagsidecar.v1.EvaluationOuterClass.Reason reason) {
    return switch (reason) {
      case STATIC -> STATIC;
      case DEFAULT -> DEFAULT;
      case TARGETING_MATCH -> TARGETING_MATCH;
      case SPLIT -> SPLIT;
      case DISABLED -> DISABLED;
      case ERROR -> ERROR;
      case REASON_UNSPECIFIED, UNRECOGNIZED -> UNKNOWN;
    };
  }
}
