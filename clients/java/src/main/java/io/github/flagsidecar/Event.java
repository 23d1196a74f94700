package io.github.flagsidecar;

import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Objects;

/**
 * An application's own tracking event ("checkout-completed"), for {@link FlagSidecarClient#track}.
 *
 * @param name what happened; the sidecar refuses an empty one (INVALID_ARGUMENT)
 * @param user who it happened to
 * @param details free-form JSON values; by convention a numeric "value" for experiment metrics
 */
public record Event(String name, User user, Map<String, ?> details) {
  public Event {
    Objects.requireNonNull(name, "name");
    Objects.requireNonNull(user, "user");
    details = details == null ? Map.of() : Collections.unmodifiableMap(new LinkedHashMap<>(details));
  }

  /** An event with no details. */
  public Event(String name, User user) {
    this(name, user, Map.of());
  }
}
