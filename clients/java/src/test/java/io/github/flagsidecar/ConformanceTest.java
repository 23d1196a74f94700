package io.github.flagsidecar;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import com.google.gson.Gson;
import io.grpc.Status;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.OptionalInt;
import java.util.stream.Stream;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.DynamicContainer;
import org.junit.jupiter.api.DynamicTest;
import org.junit.jupiter.api.TestFactory;
import org.junit.jupiter.api.TestInstance;

/**
 * The conformance suite (tests/conformance/README.md) against a real {@code flag-sidecar serve}
 * that this test starts on a free TCP port and a Unix socket: every vector over both, through
 * this client, with each split's bucket computed here ({@link Bucket}, Guava's MurmurHash3) and
 * compared with the sidecar's.
 */
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
class ConformanceTest {
  private static final Path CONFORMANCE = Sidecar.REPOSITORY.resolve("tests/conformance");
  /** What each status the vectors expect must be thrown as. */
  private static final Map<Status.Code, Class<? extends FlagSidecarException>> EXCEPTIONS = Map.of(
      Status.Code.NOT_FOUND, FlagNotFoundException.class,
      Status.Code.INVALID_ARGUMENT, InvalidArgumentException.class);

  private Map<String, Object> file;
  private Sidecar sidecar;
  private final List<FlagSidecarClient> clients = new ArrayList<>();

  @BeforeAll
  @SuppressWarnings("unchecked")
  void start() throws IOException, InterruptedException {
    file = new Gson().fromJson(Files.readString(CONFORMANCE.resolve("vectors.json")), Map.class);
    sidecar = new Sidecar(CONFORMANCE.resolve((String) file.get("flags")));
  }

  @AfterAll
  void stop() throws IOException {
    clients.forEach(FlagSidecarClient::close);
    if (sidecar != null) {
      sidecar.close();
    }
  }

  @TestFactory
  @SuppressWarnings("unchecked")
  Stream<DynamicContainer> conformance() {
    List<Map<String, Object>> vectors = (List<Map<String, Object>>) file.get("vectors");
    assertFalse(vectors.isEmpty(), "vectors.json has no vectors");
    return Stream.of(Map.entry("tcp", sidecar.tcp), Map.entry("unix", sidecar.unix))
        .map(transport -> {
          FlagSidecarClient client = FlagSidecarClient.builder(transport.getValue())
              .timeout(Duration.ofSeconds(10))
              .build();
          clients.add(client);
          return DynamicContainer.dynamicContainer(transport.getKey(), vectors.stream()
              .map(vector -> DynamicTest.dynamicTest((String) vector.get("name"), () -> {
                try {
                  run(client, vector);
                } catch (AssertionError failed) {
                  // Surefire names a dynamic test by its position: say which vector it is.
                  throw new AssertionError(
                      transport.getKey() + ": " + vector.get("name") + ": " + failed.getMessage(),
                      failed);
                }
              })));
        });
  }

  @SuppressWarnings("unchecked")
  private static void run(FlagSidecarClient client, Map<String, Object> vector) {
    Map<String, Object> request = (Map<String, Object>) vector.get("request");
    Map<String, Object> expect = (Map<String, Object>) vector.get("expect");
    boolean debug = Boolean.TRUE.equals(request.get("debug"));
    Map<String, Object> user = (Map<String, Object>) request.get("user");
    List<CallOption> options = new ArrayList<>();
    if (debug) {
      options.add(CallOption.debug());
    }
    Status.Code want = Status.Code.valueOf((String) expect.get("status"));
    FlagSidecarException error = null;
    try {
      switch ((String) vector.get("method")) {
        case "Evaluate" -> {
          Evaluation answer = client.evaluate((String) request.get("flag_key"), user(user),
              options.toArray(CallOption[]::new));
          if (expect.containsKey("evaluation")) {
            check(answer, (Map<String, Object>) expect.get("evaluation"), user, debug);
          }
        }
        case "EvaluateAll" -> {
          if (request.containsKey("flag_keys")) {
            options.add(CallOption.flagKeys(
                ((List<String>) request.get("flag_keys")).toArray(String[]::new)));
          }
          List<Evaluation> answers =
              client.evaluateAll(user(user), options.toArray(CallOption[]::new));
          if (expect.containsKey("total")) {
            List<Map<String, Object>> expected =
                (List<Map<String, Object>>) expect.get("evaluations");
            assertEquals(((Number) expect.get("total")).intValue(), answers.size(), "total");
            assertEquals(expected.size(), answers.size(), "evaluations");
            for (int i = 0; i < answers.size(); i++) {
              check(answers.get(i), expected.get(i), user, debug);
            }
          }
        }
        case "Track" -> {
          assertNotNull(expect.get("accepted"), "a Track vector must say how many are accepted");
          List<Event> events = new ArrayList<>();
          for (Map<String, Object> event : (List<Map<String, Object>>) request.get("events")) {
            events.add(new Event((String) event.get("name"),
                user((Map<String, Object>) event.get("user")),
                (Map<String, Object>) event.get("details")));
          }
          long accepted;
          try {
            accepted = client.track(events);
          } catch (FlagSidecarException failed) {
            accepted = failed.acceptedEvents();
            error = failed;
          }
          assertEquals(((Number) expect.get("accepted")).longValue(), accepted, "accepted");
        }
        default -> fail("unknown method " + vector.get("method"));
      }
    } catch (FlagSidecarException failed) {
      error = failed;
    }
    if (want == Status.Code.OK) {
      if (error != null) {
        throw new AssertionError("status " + error.code() + ", want OK", error);
      }
      return;
    }
    assertNotNull(error, "status OK, want " + want);
    assertEquals(want, error.code(), "status");
    assertInstanceOf(EXCEPTIONS.getOrDefault(want, FlagSidecarException.class), error);
    // The gRPC status is kept as the cause.
    assertEquals(want, Status.fromThrowable(error.getCause()).getCode(), "the cause's status");
  }

  private static User user(Map<String, Object> user) {
    @SuppressWarnings("unchecked")
    Map<String, Object> context = (Map<String, Object>) user.get("context");
    return new User((String) user.get("id"), context);
  }

  @SuppressWarnings("unchecked")
  private static void check(Evaluation got, Map<String, Object> want, Map<String, Object> user,
      boolean debug) {
    String key = (String) want.get("flag_key");
    assertEquals(key, got.flagKey(), "flag_key");
    assertEquals(want.get("variant"), got.variant(), key + " variant");
    assertEquals(Reason.valueOf((String) want.get("reason")), got.reason(), key + " reason");
    String errorCode = (String) want.get("error_code");
    assertEquals(ErrorCode.valueOf(errorCode.equals("ERROR_CODE_UNSPECIFIED") ? "NONE" : errorCode),
        got.errorCode(), key + " error_code");
    assertEquals(((Number) want.get("flag_version")).longValue(), got.flagVersion(),
        key + " flag_version");
    // No "value" in the vector means no value, which differs from JSON null.
    assertEquals(want.containsKey("value"), got.hasValue(), key + " has a value: " + got.value());
    assertEquals(want.get("value"), got.value(), key + " value");

    List<Integer> buckets = got.trace().stream().map(TraceStep::bucket)
        .filter(OptionalInt::isPresent).map(OptionalInt::getAsInt).toList();
    Map<String, Object> bucket = (Map<String, Object>) want.get("bucket");
    if (bucket == null) {
      assertTrue(buckets.isEmpty(), key + ": an unexpected split, buckets " + buckets);
      return;
    }
    assertTrue(debug, key + ": a vector with a bucket must ask with debug");
    int expected = ((Number) bucket.get("bucket")).intValue();
    assertEquals(List.of(expected), buckets, key + ": the sidecar's buckets");
    // Our own bucket, from the request's value, by the documented rule.
    String by = (String) bucket.get("by");
    Object value = by.equals("$userId") ? user.get("id")
        : ((Map<String, Object>) user.get("context")).get(by);
    assertEquals(Optional.of(bucket.get("text")), Bucket.text(value), key + " Bucket.text");
    assertEquals(OptionalInt.of(expected), Bucket.of(key, value), key + " Bucket.of");
  }
}
