package io.github.flagsidecar;

/** What went wrong in one flag's evaluation (OpenFeature's error codes). */
public enum ErrorCode {
  /** No error. */
  NONE,
  FLAG_NOT_FOUND,
  TYPE_MISMATCH,
  PARSE_ERROR,
  TARGETING_KEY_MISSING,
  INVALID_CONTEXT,
  GENERAL,
  /** A code this version of the client does not know (a newer sidecar). */
  UNKNOWN;

  static ErrorCode of(flagsidecar.v1.EvaluationOuterClass.ErrorCode code) {
    return switch (code) {
      case ERROR_CODE_UNSPECIFIED -> NONE;
      case FLAG_NOT_FOUND -> FLAG_NOT_FOUND;
      case TYPE_MISMATCH -> TYPE_MISMATCH;
      case PARSE_ERROR -> PARSE_ERROR;
      case TARGETING_KEY_MISSING -> TARGETING_KEY_MISSING;
      case INVALID_CONTEXT -> INVALID_CONTEXT;
      case GENERAL -> GENERAL;
      case UNRECOGNIZED -> UNKNOWN;
    };
  }
}
