package io.github.flagsidecar;

import flagsidecar.v1.EvaluationOuterClass;
import java.util.List;

/**
 * The answer for one flag.
 *
 * @param flagKey the flag
 * @param hasValue false when there is no value: an error, or a flag with no default for this
 *     case, where the caller's code default applies (not the same as a JSON null)
 * @param value the served variant's value as JSON: null, {@link Boolean}, {@link Double}, {@link
 *     String}, an unmodifiable {@code List<Object>} or {@code Map<String, Object>}
 * @param variant the served variant's key; empty when none
 * @param reason why it was served
 * @param errorCode what went wrong, {@link ErrorCode#NONE} if nothing
 * @param errorMessage for people, empty if nothing went wrong
 * @param flagVersion the version of the flag that was evaluated
 * @param trace every step of the evaluation when the call asked for {@link CallOption#debug()}
 */
public record Evaluation(
    String flagKey,
    boolean hasValue,
    Object value,
    String variant,
    Reason reason,
    ErrorCode errorCode,
    String errorMessage,
    long flagVersion,
    List<TraceStep> trace) {

  static Evaluation of(EvaluationOuterClass.Evaluation e) {
    return new Evaluation(
        e.getFlagKey(),
        e.hasValue(),
        e.hasValue() ? Values.toJava(e.getValue()) : null,
        e.getVariant(),
        Reason.of(e.getReason()),
        ErrorCode.of(e.getErrorCode()),
        e.getErrorMessage(),
        e.getFlagVersion(),
        e.getStackTraceList().stream().map(TraceStep::of).toList());
  }
}
