package io.github.flagsidecar;

import java.util.List;

/** An option of one {@link FlagSidecarClient#evaluate} or {@link FlagSidecarClient#evaluateAll} call. */
public final class CallOption {
  final boolean debug;
  final List<String> flagKeys;

  private CallOption(boolean debug, List<String> flagKeys) {
    this.debug = debug;
    this.flagKeys = flagKeys;
  }

  /** Ask for the evaluation's trace ({@link Evaluation#trace()}), with the bucket of a split. */
  public static CallOption debug() {
    return new CallOption(true, List.of());
  }

  /** Limit evaluateAll to these flags (an unknown one is reported in the list). */
  public static CallOption flagKeys(String... keys) {
    return new CallOption(false, List.of(keys));
  }
}
