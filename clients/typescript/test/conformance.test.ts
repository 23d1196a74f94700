// The conformance suite (tests/conformance/README.md) against a real `flag-sidecar serve` started
// on a free TCP port and a Unix socket: every vector over both, through this client, with each
// split's bucket also computed here (bucket(), the murmurhash package) and compared.
import { deepStrictEqual, fail, ok, strictEqual } from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";

import {
  bucket,
  bucketText,
  Client,
  FlagNotFoundError,
  FlagSidecarError,
  InvalidArgumentError,
  status,
  type Evaluation,
} from "../src/index";
import { REPO, startSidecar, type Sidecar } from "./sidecar";

const CONFORMANCE = join(REPO, "tests/conformance");

interface VectorUser {
  id?: string;
  context?: Record<string, unknown>;
}

interface ExpectedEvaluation {
  flag_key: string;
  value?: unknown;
  variant: string;
  reason: string;
  error_code: string;
  flag_version: number;
  bucket?: { by: string; text: string; bucket: number };
}

interface Vector {
  name: string;
  method: "Evaluate" | "EvaluateAll" | "Track";
  request: {
    flag_key?: string;
    user?: VectorUser;
    flag_keys?: string[];
    debug?: boolean;
    events?: { name: string; user?: VectorUser; details?: Record<string, unknown> }[];
  };
  expect: {
    status: keyof typeof status;
    evaluation?: ExpectedEvaluation;
    evaluations?: ExpectedEvaluation[];
    total?: number;
    accepted?: number;
  };
}

const file = JSON.parse(readFileSync(join(CONFORMANCE, "vectors.json"), "utf8")) as {
  flags: string;
  vectors: Vector[];
};

// The error class each status the vectors expect must give.
const classes: Partial<Record<status, typeof FlagSidecarError>> = {
  [status.NOT_FOUND]: FlagNotFoundError,
  [status.INVALID_ARGUMENT]: InvalidArgumentError,
};

describe("conformance", () => {
  let sidecar: Sidecar;
  before(async () => {
    ok(file.vectors.length > 0, "vectors.json has no vectors");
    sidecar = await startSidecar(join(CONFORMANCE, file.flags));
  });
  after(() => sidecar?.stop());

  for (const transport of ["tcp", "unix"] as const) {
    describe(transport, () => {
      let client: Client;
      before(() => {
        client = new Client(sidecar[transport], { timeoutMs: 10_000 });
      });
      after(() => client?.close());
      for (const vector of file.vectors) {
        test(vector.name, () => runVector(client, vector));
      }
    });
  }
});

async function runVector(client: Client, vector: Vector): Promise<void> {
  const { request, expect } = vector;
  const user = request.user ?? {};
  const debug = request.debug ?? false;
  let error: unknown;
  try {
    switch (vector.method) {
      case "Evaluate": {
        const answer = await client.evaluate(request.flag_key ?? "", user, { debug });
        if (expect.evaluation === undefined) {
          fail("an OK Evaluate vector must give the evaluation");
        }
        checkEvaluation(answer, expect.evaluation, user, debug);
        break;
      }
      case "EvaluateAll": {
        const answers = await client.evaluateAll(user, { debug, flagKeys: request.flag_keys });
        strictEqual(answers.length, expect.total);
        strictEqual(answers.length, expect.evaluations?.length);
        answers.forEach((answer, i) => checkEvaluation(answer, expect.evaluations![i]!, user, debug));
        break;
      }
      case "Track": {
        strictEqual(typeof expect.accepted, "number", "a Track vector must say how many events are accepted");
        strictEqual(await client.track(request.events ?? []), expect.accepted);
        break;
      }
      default:
        fail(`unknown method ${String(vector.method)}`);
    }
  } catch (caught) {
    if (!(caught instanceof FlagSidecarError)) {
      throw caught; // a failed assertion, or a bug of the client
    }
    error = caught;
  }
  const want = status[expect.status];
  strictEqual(want === undefined, false, `unknown status ${expect.status}`);
  if (want === status.OK) {
    strictEqual(error, undefined);
    return;
  }
  ok(error instanceof FlagSidecarError, `status OK, want ${expect.status}`);
  strictEqual(status[error.code], expect.status, `${error.name}: ${error.message}`);
  const ErrorOfStatus = classes[want];
  if (ErrorOfStatus !== undefined) {
    ok(error instanceof ErrorOfStatus, `${error.name} is not a ${ErrorOfStatus.name}`);
  }
  if (vector.method === "Track") {
    strictEqual(error.accepted, expect.accepted, "accepted events of the failed stream");
  }
}

function checkEvaluation(got: Evaluation, want: ExpectedEvaluation, user: VectorUser, debug: boolean): void {
  const fields = {
    flagKey: got.flagKey,
    variant: got.variant,
    reason: got.reason,
    errorCode: got.errorCode,
    flagVersion: got.flagVersion,
  };
  deepStrictEqual(fields, {
    flagKey: want.flag_key,
    variant: want.variant,
    reason: want.reason,
    errorCode: want.error_code,
    flagVersion: want.flag_version,
  });
  // No "value" in the vector means no value, which differs from JSON null.
  deepStrictEqual(got.value, want.value, `${want.flag_key} value`);
  const buckets = got.trace.flatMap((step) => (step.bucket === undefined ? [] : [step.bucket]));
  if (want.bucket === undefined) {
    deepStrictEqual(buckets, [], `${want.flag_key}: an unexpected split`);
    return;
  }
  ok(debug, `${want.flag_key}: a vector with a bucket must ask with debug`);
  deepStrictEqual(buckets, [want.bucket.bucket], `${want.flag_key}: the sidecar's buckets`);
  // Our own bucket, from the request's value, by the documented rule.
  const value = want.bucket.by === "$userId" ? user.id : user.context?.[want.bucket.by];
  strictEqual(bucketText(value), want.bucket.text, `${want.flag_key}: bucketText(${JSON.stringify(value)})`);
  strictEqual(
    bucket(want.flag_key, value),
    want.bucket.bucket,
    `${want.flag_key}: bucket(${JSON.stringify(value)})`,
  );
}
