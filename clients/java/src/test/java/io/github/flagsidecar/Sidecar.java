package io.github.flagsidecar;

import static org.junit.jupiter.api.Assertions.fail;

import com.google.gson.JsonObject;
import com.google.gson.JsonParser;
import io.grpc.Grpc;
import io.grpc.InsecureChannelCredentials;
import io.grpc.ManagedChannel;
import io.grpc.health.v1.HealthCheckRequest;
import io.grpc.health.v1.HealthCheckResponse.ServingStatus;
import io.grpc.health.v1.HealthGrpc;
import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Collections;
import java.util.Comparator;
import java.util.List;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Stream;

/**
 * A real {@code flag-sidecar serve} on 127.0.0.1:0 and a Unix socket, for the tests: the
 * repository's .venv (made by {@code make}) or the command in FLAG_SIDECAR.
 */
final class Sidecar implements AutoCloseable {
  static final Path REPOSITORY = Path.of(System.getProperty("flagsidecar.repository", "../.."))
      .toAbsolutePath().normalize();
  private static final Pattern LISTENING = Pattern.compile("^listening on (\\S+) ");

  private final Process process;
  private final Path directory;
  private final List<String> log = Collections.synchronizedList(new ArrayList<>());
  final String tcp;
  final String unix;

  Sidecar(Path flags) throws IOException, InterruptedException {
    // Not a JUnit @TempDir: its long name could pass the 108-byte limit of a socket path.
    directory = Files.createTempDirectory("flag-sidecar-java");
    ProcessBuilder builder = new ProcessBuilder(command(), "serve", "--flags", flags.toString(),
        "--listen", "127.0.0.1:0", "--listen", "unix://" + directory.resolve("grpc.sock"));
    builder.environment().keySet().removeIf(name -> name.startsWith("FLAG_SIDECAR_"));
    // Not the fixed management port: tests and other sidecars run side by side.
    builder.environment().put("FLAG_SIDECAR_MANAGEMENT_LISTEN", "127.0.0.1:0");
    builder.environment().put("PYTHONUNBUFFERED", "1");
    builder.redirectOutput(ProcessBuilder.Redirect.DISCARD);
    process = builder.start();
    BlockingQueue<String> addresses = new LinkedBlockingQueue<>();
    Thread reader = new Thread(() -> read(addresses), "flag-sidecar log");
    reader.setDaemon(true); // it reads on to the end, so that the sidecar never blocks on a full pipe
    reader.start();
    String tcpAddress = null;
    String unixAddress = null;
    long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(30);
    while (tcpAddress == null || unixAddress == null) {
      String address = addresses.poll(100, TimeUnit.MILLISECONDS);
      if (address != null && address.startsWith("unix:")) {
        unixAddress = address;
      } else if (address != null) {
        tcpAddress = address;
      } else if (!process.isAlive()) {
        close();
        fail("flag-sidecar serve exited before listening:\n" + String.join("\n", log));
      } else if (System.nanoTime() > deadline) {
        close();
        fail("flag-sidecar serve did not listen within 30 s:\n" + String.join("\n", log));
      }
    }
    tcp = tcpAddress;
    unix = unixAddress;
    waitServing();
  }

  private static String command() {
    String command = System.getenv("FLAG_SIDECAR");
    if (command != null && !command.isEmpty()) {
      return command;
    }
    Path venv = REPOSITORY.resolve(".venv/bin/flag-sidecar");
    if (!Files.isExecutable(venv)) {
      fail("no sidecar to test against at " + venv + " (run `make test-java` from the repository "
          + "root, which installs it, or set FLAG_SIDECAR to a flag-sidecar command)");
    }
    return venv.toString();
  }

  private void read(BlockingQueue<String> addresses) {
    try (BufferedReader lines = new BufferedReader(
        new InputStreamReader(process.getErrorStream(), StandardCharsets.UTF_8))) {
      for (String line = lines.readLine(); line != null; line = lines.readLine()) {
        log.add(line);
        JsonObject record;
        try {
          record = JsonParser.parseString(line).getAsJsonObject();
        } catch (RuntimeException notJson) {
          continue;
        }
        if (record.has("event") && "listening".equals(record.get("event").getAsString())) {
          Matcher match = LISTENING.matcher(record.get("message").getAsString());
          if (match.find()) {
            addresses.add(match.group(1));
          }
        }
      }
    } catch (IOException ended) {
      // the process is gone
    }
  }

  private void waitServing() throws InterruptedException {
    ManagedChannel channel = Grpc.newChannelBuilder(tcp, InsecureChannelCredentials.create()).build();
    try {
      long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(30);
      while (true) {
        try {
          ServingStatus status = HealthGrpc.newBlockingStub(channel)
              .withDeadlineAfter(1, TimeUnit.SECONDS)
              .check(HealthCheckRequest.getDefaultInstance())
              .getStatus();
          if (status == ServingStatus.SERVING) {
            return;
          }
        } catch (io.grpc.StatusRuntimeException notYet) {
          // not serving yet
        }
        if (System.nanoTime() > deadline) {
          fail(tcp + " not SERVING within 30 s:\n" + String.join("\n", log));
        }
        Thread.sleep(50);
      }
    } finally {
      channel.shutdownNow();
    }
  }

  @Override
  public void close() throws IOException {
    process.destroyForcibly();
    try {
      process.waitFor(10, TimeUnit.SECONDS);
    } catch (InterruptedException interrupted) {
      Thread.currentThread().interrupt();
    }
    try (Stream<Path> files = Files.walk(directory)) {
      for (Path file : files.sorted(Comparator.reverseOrder()).toList()) {
        Files.deleteIfExists(file);
      }
    }
  }
}
