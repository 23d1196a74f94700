package io.github.flagsidecar;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertThrows;

import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import java.time.Duration;
import java.util.Map;
import org.junit.jupiter.api.Test;

/** What the conformance vectors cannot show: failures before or instead of the sidecar's answer. */
class ClientTest {
  /** A Unix socket nothing listens on. */
  private static final String NOWHERE = "unix:///nonexistent/flag-sidecar/grpc.sock";

  @Test
  void noSidecarIsUnavailableWithTheStatusAsCause() {
    try (FlagSidecarClient client = FlagSidecarClient.builder(NOWHERE).build()) {
      UnavailableException error =
          assertThrows(UnavailableException.class, () -> client.evaluate("f", new User("u1")));
      assertEquals(Status.Code.UNAVAILABLE, error.code());
      assertInstanceOf(StatusRuntimeException.class, error.getCause());
      assertThrows(UnavailableException.class, () -> client.track(new Event("e", new User("u1"))));
    }
  }

  @Test
  void aCallPastItsDeadlineIsDeadlineExceeded() {
    // A deadline that has passed before the call starts: grpc-java fails it without connecting.
    try (FlagSidecarClient client =
        FlagSidecarClient.builder(NOWHERE).timeout(Duration.ofNanos(1)).build()) {
      DeadlineExceededException error = assertThrows(DeadlineExceededException.class,
          () -> client.evaluateAll(new User("u1")));
      assertEquals(Status.Code.DEADLINE_EXCEEDED, error.code());
    }
  }

  @Test
  void aValueThatIsNotJsonIsRefusedBeforeSending() {
    try (FlagSidecarClient client = FlagSidecarClient.builder(NOWHERE).build()) {
      InvalidArgumentException error = assertThrows(InvalidArgumentException.class,
          () -> client.evaluate("f", new User("u1", Map.of("when", new Object()))));
      assertEquals(Status.Code.INVALID_ARGUMENT, error.code());
      assertInstanceOf(IllegalArgumentException.class, error.getCause());
    }
  }
}
