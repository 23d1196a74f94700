// What the sidecar cannot be made to do on demand (hang, answer any status code), against a
// stand-in EvaluationService on a Unix socket; and the bucket rule's edge cases.
import { deepStrictEqual, ok, rejects, strictEqual } from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, test } from "node:test";

import { Server, ServerCredentials, status as grpcStatus, type ServerUnaryCall } from "@grpc/grpc-js";

import {
  bucket,
  bucketText,
  CancelledError,
  Client,
  DeadlineExceededError,
  FlagNotFoundError,
  FlagSidecarError,
  InternalError,
  InvalidArgumentError,
  ResourceExhaustedError,
  status,
  UnavailableError,
} from "../src/index";
import {
  EvaluateResponse,
  EvaluationServiceService,
  type EvaluateRequest,
  type EvaluationServiceServer,
} from "../src/gen/flagsidecar/v1/evaluation";

const dir = mkdtempSync(join(tmpdir(), "fs-ts-unit-"));
after(() => rmSync(dir, { recursive: true, force: true }));
let sockets = 0;

type Handler = (
  call: ServerUnaryCall<EvaluateRequest, unknown>,
) => Promise<{ code: grpcStatus; details: string } | undefined>;

/** Serves Evaluate with `handler` (undefined: answer an evaluation of "f") on a new Unix socket. */
async function standIn(handler: Handler): Promise<{ target: string; server: Server }> {
  const server = new Server();
  const service: EvaluationServiceServer = {
    evaluate: (call, done) => {
      void handler(call).then((failure) =>
        failure ? done(failure) : done(null, EvaluateResponse.fromPartial({ evaluation: { flagKey: "f" } })),
      );
    },
    evaluateAll: (_, done) => done({ code: grpcStatus.UNIMPLEMENTED }),
  };
  server.addService(EvaluationServiceService, service);
  const target = `unix://${join(dir, `s${sockets++}`)}`;
  await new Promise<void>((bound, failed) =>
    server.bindAsync(target, ServerCredentials.createInsecure(), (error) =>
      error ? failed(error) : bound(),
    ),
  );
  after(() => server.forceShutdown());
  return { target, server };
}

test("every call gets a deadline, and the caller's own is kept", async () => {
  const deadlines: number[] = [];
  const { target } = await standIn(async (call) => {
    deadlines.push(Number(call.getDeadline()));
    return undefined;
  });
  const client = new Client(target);
  try {
    strictEqual((await client.evaluate("f", { id: "u1" })).flagKey, "f");
    await client.evaluate("f", {}, { timeoutMs: 3_600_000 });
    strictEqual(deadlines.length, 2);
    ok(Number.isFinite(deadlines[0]), "a call without a timeout reached the server without a deadline");
    ok(deadlines[1]! > deadlines[0]! + 3_000_000, "the call's own timeout was not used");
  } finally {
    client.close();
  }
});

test("a hung call ends at the deadline", async () => {
  const { target } = await standIn(
    (call) => new Promise((answer) => call.on("cancelled", () => answer(undefined))),
  );
  const client = new Client(target, { timeoutMs: 50 });
  try {
    await rejects(
      client.evaluate("f"),
      (error) => error instanceof DeadlineExceededError && error.code === status.DEADLINE_EXCEEDED,
    );
  } finally {
    client.close();
  }
});

test("an aborted signal cancels the call", async () => {
  const { target } = await standIn(
    (call) => new Promise((answer) => call.on("cancelled", () => answer(undefined))),
  );
  const client = new Client(target, { timeoutMs: 0 });
  try {
    const controller = new AbortController();
    const answer = client.evaluate("f", {}, { signal: controller.signal });
    setTimeout(() => controller.abort(), 20);
    await rejects(answer, (error) => error instanceof CancelledError && error.code === status.CANCELLED);
    await rejects(client.evaluate("f", {}, { signal: controller.signal }), CancelledError);
  } finally {
    client.close();
  }
});

test("status codes map to error classes that keep the code and the message", async () => {
  const cases: [grpcStatus, typeof FlagSidecarError][] = [
    [grpcStatus.NOT_FOUND, FlagNotFoundError],
    [grpcStatus.INVALID_ARGUMENT, InvalidArgumentError],
    [grpcStatus.RESOURCE_EXHAUSTED, ResourceExhaustedError],
    [grpcStatus.UNAVAILABLE, UnavailableError],
    [grpcStatus.INTERNAL, InternalError],
    [grpcStatus.UNKNOWN, InternalError],
    [grpcStatus.PERMISSION_DENIED, FlagSidecarError],
  ];
  for (const [code, ErrorOfCode] of cases) {
    const { target } = await standIn(async () => ({ code, details: "the message" }));
    const client = new Client(target);
    try {
      await rejects(client.evaluate("f"), (error) => {
        ok(error instanceof ErrorOfCode, `${grpcStatus[code]}: ${String(error)}`);
        strictEqual(error.constructor, ErrorOfCode, `${grpcStatus[code]}: ${error.name}`);
        strictEqual(error.code, code);
        strictEqual(error.message, "the message");
        return true;
      });
    } finally {
      client.close();
    }
  }
});

test("no sidecar at the target is UnavailableError", async () => {
  const client = new Client(`unix://${join(dir, "nothing-here")}`);
  try {
    await rejects(client.evaluate("f"), UnavailableError);
  } finally {
    client.close();
  }
});

test("a call after close() is CancelledError", async () => {
  const { target } = await standIn(async () => undefined);
  const client = new Client(target);
  await client.evaluate("f");
  client.close();
  await rejects(client.evaluate("f"), CancelledError);
  await rejects(client.track([{ name: "e" }]), CancelledError);
});

test("a value protobuf cannot carry is refused before sending", async () => {
  const client = new Client(`unix://${join(dir, "nothing-here")}`);
  try {
    for (const [i, value] of [new Date(), 1n, () => 1, new Map(), [Symbol("s")]].entries()) {
      await rejects(client.evaluate("f", { context: { at: value } }), InvalidArgumentError, `value ${i}`);
    }
    await rejects(client.track([{ name: "e", details: { at: new Date() } }]), InvalidArgumentError);
  } finally {
    client.close();
  }
});

test("the README's bucket example", () => {
  strictEqual(bucket("new-checkout", "acct-42"), 55);
});

test("bucket texts of numbers, and values that cannot be bucketed on", () => {
  const texts: [unknown, string][] = [
    [42, "42"],
    [-0, "0"],
    [-7, "-7"],
    [1e20, "100000000000000000000"],
    [1e21, "1000000000000000000000"],
    [2 ** 53 + 1, "9007199254740992"],
    [1.5, "1.5"],
    [1234567.5, "1234567.5"],
    [0.0001, "0.0001"],
    [0.00001, "1e-05"],
    [2.5e-7, "2.5e-07"],
    [-1.25e-100, "-1.25e-100"],
    [true, "true"],
    ["", ""],
  ];
  for (const [value, text] of texts) {
    strictEqual(bucketText(value), text, String(value));
  }
  for (const value of [null, undefined, NaN, Infinity, -Infinity, ["a"], {}, 1n]) {
    strictEqual(bucketText(value), undefined, String(value));
    strictEqual(bucket("f", value), undefined);
  }
  deepStrictEqual(bucket("f", 42), bucket("f", "42"));
});
