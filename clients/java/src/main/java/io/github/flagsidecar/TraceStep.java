package io.github.flagsidecar;

import java.util.OptionalInt;

/**
 * One step of an evaluation, returned when a call asks for {@link CallOption#debug()}.
 *
 * @param type "flag", "rule", "constraint", "segment", "distribution" or "default"
 * @param id the flag key, rule id, segment key or constraint position ("rules[0].constraints[1]")
 * @param hasAnswer whether this step served a value
 * @param answer the value this step served (as {@link Evaluation#value()} is), or null
 * @param matched whether this step held (a rule or constraint matched, a user was in a segment)
 * @param detail a plain explanation of the outcome
 * @param depth nesting level: a rule is 1, its constraints 2, a segment's constraints deeper
 * @param bucket the computed bucket in [0, 10000), for distribution steps
 */
public record TraceStep(
    String type,
    String id,
    boolean hasAnswer,
    Object answer,
    boolean matched,
    String detail,
    int depth,
    OptionalInt bucket) {

  static TraceStep of(flagsidecar.v1.EvaluationOuterClass.StackTrace step) {
    return new TraceStep(
        step.getType(),
        step.getId(),
        step.hasAnswer(),
        step.hasAnswer() ? Values.toJava(step.getAnswer()) : null,
        step.getMatched(),
        step.getDetail(),
        step.getDepth(),
        step.hasBucket() ? OptionalInt.of(step.getBucket()) : OptionalInt.empty());
  }
}
