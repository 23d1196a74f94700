package io.github.flagsidecar;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.Test;

/**
 * docs/clients/java.md shows src/test/java/example/Example.java as it is, and the output it prints
 * against a real sidecar serving examples/flags.yaml (as `make run` does), here over a Unix socket.
 */
class ExampleDocTest {
  @Test
  void theDocsExampleRunsAsShown() throws Exception {
    String page = Files.readString(Sidecar.REPOSITORY.resolve("docs/clients/java.md"));
    Matcher blocks = Pattern.compile("(?s)```java\n(.*?)```\n\nOutput:\n\n```\n(.*?)```")
        .matcher(page);
    assertTrue(blocks.find(), "docs/clients/java.md has no Java program followed by its output");
    String program = Files.readString(
        Sidecar.REPOSITORY.resolve("clients/java/src/test/java/example/Example.java"));
    assertEquals(program, blocks.group(1), "docs/clients/java.md does not show Example.java as it is");

    PrintStream stdout = System.out;
    ByteArrayOutputStream printed = new ByteArrayOutputStream();
    try (Sidecar sidecar = new Sidecar(Sidecar.REPOSITORY.resolve("examples/flags.yaml"))) {
      System.setOut(new PrintStream(printed, true, StandardCharsets.UTF_8));
      example.Example.main(new String[] {sidecar.unix});
    } finally {
      System.setOut(stdout);
    }
    assertEquals(blocks.group(2), printed.toString(StandardCharsets.UTF_8),
        "what the example prints differs from what docs/clients/java.md says");
  }
}
