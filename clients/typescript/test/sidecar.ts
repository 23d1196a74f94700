// A real `flag-sidecar serve` for the tests: on 127.0.0.1:0 and a Unix socket, the bound addresses
// read back from its log.
import { spawn } from "node:child_process";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { createInterface } from "node:readline";

import { BinaryReader } from "@bufbuild/protobuf/wire";
import { Client as GrpcClient, credentials } from "@grpc/grpc-js";

/** The repository's root (this file runs as dist/test/sidecar.js). */
export const REPO = resolve(__dirname, "../../../..");

export interface Sidecar {
  tcp: string;
  unix: string;
  stop(): Promise<void>;
}

/** FLAG_SIDECAR (a path) if set, else the repository's .venv (made by `make`). */
function sidecarCommand(): string {
  const command = process.env.FLAG_SIDECAR ?? join(REPO, ".venv/bin/flag-sidecar");
  if (!existsSync(command)) {
    throw new Error(
      `no sidecar to test against at ${command} (run \`make test-ts\` from the repository root, ` +
        "which installs it, or set FLAG_SIDECAR to a flag-sidecar command)",
    );
  }
  return command;
}

/** Starts the sidecar serving `flags` and resolves once it listens on both addresses and is SERVING. */
export async function startSidecar(flags: string): Promise<Sidecar> {
  // A short directory: a socket path has a 108-byte limit.
  const dir = mkdtempSync(join(tmpdir(), "fs-ts-"));
  const env = Object.fromEntries(
    Object.entries(process.env).filter(([name]) => !name.startsWith("FLAG_SIDECAR_")),
  );
  // Not the fixed management port: tests and other sidecars run side by side.
  Object.assign(env, { FLAG_SIDECAR_MANAGEMENT_LISTEN: "127.0.0.1:0", PYTHONUNBUFFERED: "1" });
  const child = spawn(
    sidecarCommand(),
    ["serve", "--flags", flags, "--listen", "127.0.0.1:0", "--listen", `unix://${join(dir, "grpc.sock")}`],
    { env, stdio: ["ignore", "ignore", "pipe"] },
  );
  const exited = new Promise<void>((done) => child.once("exit", () => done()));
  const stop = async () => {
    child.kill();
    await exited;
    rmSync(dir, { recursive: true, force: true });
  };
  const log: string[] = [];
  const addresses: string[] = [];
  try {
    await new Promise<void>((listening, failed) => {
      const timer = setTimeout(
        () => failed(new Error(`flag-sidecar serve did not listen:\n${log.join("\n")}`)),
        30_000,
      );
      child.once("exit", (code) => {
        clearTimeout(timer);
        failed(new Error(`flag-sidecar serve exited (${code}) before listening:\n${log.join("\n")}`));
      });
      // The reader goes on to the end, so that the sidecar never blocks on a full pipe.
      createInterface({ input: child.stderr }).on("line", (line) => {
        log.push(line);
        const address = listeningAddress(line);
        if (address !== undefined && addresses.push(address) === 2) {
          clearTimeout(timer);
          listening();
        }
      });
    });
    const tcp = addresses.find((address) => !address.startsWith("unix:"));
    const unix = addresses.find((address) => address.startsWith("unix:"));
    if (tcp === undefined || unix === undefined) {
      throw new Error(`not one TCP and one Unix address: ${addresses.join(", ")}`);
    }
    await waitServing(tcp);
    return { tcp, unix, stop };
  } catch (error) {
    await stop();
    throw error;
  }
}

function listeningAddress(line: string): string | undefined {
  try {
    const entry = JSON.parse(line) as { event?: string; message?: string };
    return entry.event === "listening" ? /^listening on (\S+) /.exec(entry.message ?? "")?.[1] : undefined;
  } catch {
    return undefined; // not a JSON log line
  }
}

/** grpc.health.v1.Health/Check of the server ("") until SERVING (1), read with the raw wire reader. */
async function waitServing(target: string): Promise<void> {
  const client = new GrpcClient(target, credentials.createInsecure());
  try {
    const until = Date.now() + 30_000;
    for (;;) {
      const answer = await new Promise<number | Error>((done) =>
        client.makeUnaryRequest(
          "/grpc.health.v1.Health/Check",
          () => Buffer.alloc(0),
          (bytes: Buffer) => {
            const reader = new BinaryReader(bytes);
            return reader.pos < reader.len && reader.uint32() === 8 ? reader.int32() : 0;
          },
          {},
          { deadline: Date.now() + 1000 },
          (error, status) => done(error ?? status ?? 0),
        ),
      );
      if (answer === 1) {
        return;
      }
      if (Date.now() > until) {
        throw new Error(`${target} not SERVING: ${String(answer)}`);
      }
      await new Promise((wait) => setTimeout(wait, 50));
    }
  } finally {
    client.close();
  }
}
