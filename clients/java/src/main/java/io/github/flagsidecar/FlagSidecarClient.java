package io.github.flagsidecar;

import flagsidecar.v1.EvaluationOuterClass.EvaluateAllRequest;
import flagsidecar.v1.EvaluationOuterClass.EvaluateRequest;
import flagsidecar.v1.EvaluationServiceGrpc;
import flagsidecar.v1.EvaluationServiceGrpc.EvaluationServiceBlockingStub;
import flagsidecar.v1.Event.TrackRequest;
import flagsidecar.v1.Event.TrackResponse;
import flagsidecar.v1.EventServiceGrpc;
import flagsidecar.v1.EventServiceGrpc.EventServiceStub;
import com.google.protobuf.Struct;
import io.grpc.ChannelCredentials;
import io.grpc.Grpc;
import io.grpc.InsecureChannelCredentials;
import io.grpc.ManagedChannel;
import io.grpc.ManagedChannelBuilder;
import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import io.grpc.netty.shaded.io.grpc.netty.NettyChannelBuilder;
import io.grpc.netty.shaded.io.netty.channel.ChannelOption;
import io.grpc.stub.AbstractStub;
import io.grpc.stub.StreamObserver;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;

/**
 * A client of one flag-sidecar's native API (flagsidecar.v1). Safe for concurrent use: build one,
 * share it, close it at the end.
 *
 * <pre>{@code
 * try (FlagSidecarClient client = FlagSidecarClient.builder("127.0.0.1:50051").build()) {
 *   Evaluation answer = client.evaluate("new-checkout", new User("u1"));
 * }
 * }</pre>
 *
 * <p>Every call fails with a {@link FlagSidecarException} (a subclass for each kind of failure)
 * instead of a bare gRPC status.
 */
public final class FlagSidecarClient implements AutoCloseable {
  /**
   * The deadline of a call unless the builder sets another. The sidecar answers on the same host,
   * so a call that takes longer means something is wrong: fail instead of hanging.
   */
  public static final Duration DEFAULT_TIMEOUT = Duration.ofSeconds(1);

  private final ManagedChannel channel;
  private final EvaluationServiceBlockingStub evaluations;
  private final EventServiceStub events;
  private final Duration timeout;

  private FlagSidecarClient(ManagedChannel channel, Duration timeout) {
    this.channel = channel;
    this.evaluations = EvaluationServiceGrpc.newBlockingStub(channel);
    this.events = EventServiceGrpc.newStub(channel);
    this.timeout = timeout;
  }

  /**
   * A builder for the sidecar at {@code target}: "host:port" over TCP, or "unix:///absolute/path"
   * for a Unix socket.
   */
  public static Builder builder(String target) {
    return new Builder(target);
  }

  /** Configures a client; {@link #build()} makes it. */
  public static final class Builder {
    private final String target;
    private Duration timeout = DEFAULT_TIMEOUT;
    private ChannelCredentials credentials = InsecureChannelCredentials.create();

    private Builder(String target) {
      this.target = Objects.requireNonNull(target, "target");
    }

    /**
     * The deadline of every call ({@link #DEFAULT_TIMEOUT} otherwise); zero or negative: no
     * deadline, a call may then wait as long as the connection lasts.
     */
    public Builder timeout(Duration timeout) {
      this.timeout = Objects.requireNonNull(timeout, "timeout");
      return this;
    }

    /**
     * Credentials for a sidecar that serves TLS, e.g. {@code TlsChannelCredentials.create()}
     * (the default is plaintext, as the sidecar's is).
     */
    public Builder credentials(ChannelCredentials credentials) {
      this.credentials = Objects.requireNonNull(credentials, "credentials");
      return this;
    }

    /**
     * The client. It does not connect yet: the first call does, and fails with {@link
     * UnavailableException} if it cannot.
     */
    public FlagSidecarClient build() {
      ManagedChannelBuilder<?> channel = Grpc.newChannelBuilder(target, credentials);
      if (channel instanceof NettyChannelBuilder netty && target.startsWith("unix:")) {
        // grpc-java sets SO_KEEPALIVE on every connection, and Netty logs a warning for each Unix
        // socket one, which has no such option; null removes it.
        netty.withOption(ChannelOption.SO_KEEPALIVE, null);
      }
      return new FlagSidecarClient(channel.build(), timeout);
    }
  }

  /**
   * Evaluates one flag for a user. {@link CallOption#debug()} asks for the trace.
   *
   * @throws FlagNotFoundException the flag set has no such flag
   * @throws InvalidArgumentException an empty key, or a context the sidecar refuses
   */
  public Evaluation evaluate(String flagKey, User user, CallOption... options) {
    EvaluateRequest.Builder request = EvaluateRequest.newBuilder()
        .setFlagKey(Objects.requireNonNull(flagKey, "flagKey"))
        .setUser(userMessage(user));
    for (CallOption option : options) {
      request.setDebug(request.getDebug() || option.debug);
    }
    try {
      return Evaluation.of(withDeadline(evaluations).evaluate(request.build()).getEvaluation());
    } catch (StatusRuntimeException error) {
      throw FlagSidecarException.of(error);
    }
  }

  /**
   * Evaluates every flag for a user (or those of {@link CallOption#flagKeys}), sorted by key. A
   * flag that fails is an entry with {@link Reason#ERROR}; the call does not fail for it.
   */
  public List<Evaluation> evaluateAll(User user, CallOption... options) {
    EvaluateAllRequest.Builder request = EvaluateAllRequest.newBuilder().setUser(userMessage(user));
    for (CallOption option : options) {
      request.setDebug(request.getDebug() || option.debug).addAllFlagKeys(option.flagKeys);
    }
    try {
      return withDeadline(evaluations).evaluateAll(request.build()).getEvaluationsList().stream()
          .map(Evaluation::of)
          .toList();
    } catch (StatusRuntimeException error) {
      throw FlagSidecarException.of(error);
    }
  }

  /**
   * Sends events on one stream, in order, and returns how many the sidecar accepted. When the
   * stream fails (an event without a name is {@link InvalidArgumentException}, full buffers are
   * {@link ResourceExhaustedException}), {@link FlagSidecarException#acceptedEvents()} still
   * counts the events before the refused one: send the others again.
   */
  public long track(List<Event> events) {
    List<TrackRequest> messages = new ArrayList<>(events.size());
    for (Event event : events) {
      messages.add(TrackRequest.newBuilder()
          .setName(event.name())
          .setUser(userMessage(event.user()))
          .setDetails(struct(event.details(), "event details"))
          .build());
    }
    CompletableFuture<TrackResponse> response = new CompletableFuture<>();
    StreamObserver<TrackRequest> stream = withDeadline(this.events).track(new StreamObserver<>() {
      @Override
      public void onNext(TrackResponse value) {
        response.complete(value);
      }

      @Override
      public void onError(Throwable error) {
        response.completeExceptionally(error);
      }

      @Override
      public void onCompleted() {
        response.completeExceptionally(
            Status.INTERNAL.withDescription("Track ended with no response").asRuntimeException());
      }
    });
    // A message sent after the sidecar ended the stream is dropped; the status below says why.
    messages.forEach(stream::onNext);
    stream.onCompleted();
    try {
      return response.get().getAccepted();
    } catch (ExecutionException failed) {
      if (failed.getCause() instanceof StatusRuntimeException error) {
        throw FlagSidecarException.of(error);
      }
      throw new IllegalStateException("Track failed", failed.getCause());
    } catch (InterruptedException interrupted) {
      Thread.currentThread().interrupt();
      throw FlagSidecarException.of(Status.CANCELLED.withCause(interrupted)
          .withDescription("interrupted").asRuntimeException());
    }
  }

  /** {@link #track(List)} of these events. */
  public long track(Event... events) {
    return track(List.of(events));
  }

  /** Closes the connection, waiting briefly for calls in flight. */
  @Override
  public void close() {
    channel.shutdown();
    try {
      if (!channel.awaitTermination(hasDeadline() ? timeout.toMillis() : 1000,
          TimeUnit.MILLISECONDS)) {
        channel.shutdownNow();
      }
    } catch (InterruptedException interrupted) {
      channel.shutdownNow();
      Thread.currentThread().interrupt();
    }
  }

  private boolean hasDeadline() {
    return !timeout.isNegative() && !timeout.isZero();
  }

  private <S extends AbstractStub<S>> S withDeadline(S stub) {
    return hasDeadline() ? stub.withDeadlineAfter(timeout.toNanos(), TimeUnit.NANOSECONDS)
        : stub;
  }

  private static flagsidecar.v1.EvaluationOuterClass.User userMessage(User user) {
    Objects.requireNonNull(user, "user");
    return flagsidecar.v1.EvaluationOuterClass.User.newBuilder()
        .setId(user.id())
        .setContext(struct(user.context(), "user context"))
        .build();
  }

  private static Struct struct(Map<String, ?> fields, String what) {
    try {
      return Values.toStruct(fields);
    } catch (IllegalArgumentException refused) {
      throw new InvalidArgumentException(
          "INVALID_ARGUMENT: " + what + ": " + refused.getMessage(), refused, 0);
    }
  }
}
