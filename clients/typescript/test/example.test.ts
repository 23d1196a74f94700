// docs/clients/typescript.md shows examples/example.ts as it is, and the output it prints against a
// real sidecar serving examples/flags.yaml (as `make run` does), here over a Unix socket.
import { execFile } from "node:child_process";
import { strictEqual } from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import { promisify } from "node:util";

import { REPO, startSidecar } from "./sidecar";

const PACKAGE = join(REPO, "clients/typescript");

test("the docs example runs as shown", async () => {
  const page = readFileSync(join(REPO, "docs/clients/typescript.md"), "utf8");
  const blocks = /```ts\n([\s\S]*?)```\n\nOutput:\n\n```\n([\s\S]*?)```/.exec(page);
  if (blocks === null) {
    throw new Error("docs/clients/typescript.md has no TypeScript program followed by its output");
  }
  const program = readFileSync(join(PACKAGE, "examples/example.ts"), "utf8");
  strictEqual(blocks[1], program, "docs/clients/typescript.md does not show examples/example.ts as it is");
  const sidecar = await startSidecar(join(REPO, "examples/flags.yaml"));
  try {
    // The compiled example (this test runs from the same build), run as the page says.
    const { stdout } = await promisify(execFile)(
      process.execPath,
      ["dist/examples/example.js", sidecar.unix],
      {
        cwd: PACKAGE,
      },
    );
    strictEqual(stdout, blocks[2], "the example's output differs from the page's");
  } finally {
    await sidecar.stop();
  }
});
