package io.github.flagsidecar;

import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Objects;

/**
 * The subject of an evaluation. Context values are JSON scalars: {@link String}, {@link Boolean},
 * a {@link Number} or {@code null}; the sidecar refuses lists and maps, and keys starting with "$".
 *
 * @param id the default bucketing key ("$userId" in constraints)
 * @param context attributes that constraints test; empty when there are none
 */
public record User(String id, Map<String, ?> context) {
  public User {
    Objects.requireNonNull(id, "id");
    // A copy that keeps null values (Map.copyOf would refuse them: null is a valid context value).
    context = context == null ? Map.of() : Collections.unmodifiableMap(new LinkedHashMap<>(context));
  }

  /** A user with no context. */
  public User(String id) {
    this(id, Map.of());
  }
}
