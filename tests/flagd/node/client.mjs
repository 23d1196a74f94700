// The OpenFeature Node server SDK + flagd provider (RPC resolver) against a running sidecar.
//
//   node client.mjs --port PORT --flag-file FLAGS.yaml --changed-file CHANGED.yaml [--host HOST]
//
// Runs the checks of ../clients/checks.json, then replaces the flag file with the changed one and
// waits for PROVIDER_CONFIGURATION_CHANGED; prints one JSON report on stdout, like py_client.py
// (see tests/flagd/test_clients.py). The Node provider reads every number with ResolveFloat.

import { copyFileSync, readFileSync, renameSync } from "node:fs";
import { parseArgs } from "node:util";
import { FlagdProvider } from "@openfeature/flagd-provider";
import { OpenFeature, ProviderEvents, ProviderStatus } from "@openfeature/server-sdk";

const { values: args } = parseArgs({
  options: {
    host: { type: "string", default: "127.0.0.1" },
    port: { type: "string" },
    "flag-file": { type: "string" },
    "changed-file": { type: "string" },
  },
});
const spec = JSON.parse(readFileSync(new URL("../clients/checks.json", import.meta.url), "utf8"));

async function evaluate(client, check) {
  const context = { ...(check.context ?? {}) };
  if (check.targetingKey !== undefined) context.targetingKey = check.targetingKey;
  const method = {
    boolean: "getBooleanDetails",
    string: "getStringDetails",
    integer: "getNumberDetails",
    float: "getNumberDetails",
    object: "getObjectDetails",
  }[check.type];
  const details = await client[method](check.flag, check.default, context);
  return {
    value: details.value,
    reason: details.reason,
    variant: details.variant ?? null,
    errorCode: details.errorCode ?? null,
  };
}

async function evaluateAll(client, checks, seconds = {}) {
  const results = {};
  for (const check of checks) {
    const started = performance.now();
    results[check.name] = await evaluate(client, check);
    seconds[check.name] = Math.round(performance.now() - started) / 1000;
  }
  return results;
}

async function main() {
  const report = { client: "node" };
  const changedFlags = new Set();
  let onChanged;
  const changed = new Promise((resolve) => {
    onChanged = resolve;
  });
  OpenFeature.addHandler(ProviderEvents.ConfigurationChanged, (details) => {
    for (const key of details?.flagsChanged ?? []) changedFlags.add(key);
    if (changedFlags.has(spec.changedFlag)) onChanged(true);
  });

  const provider = new FlagdProvider({
    resolverType: "rpc",
    host: args.host,
    port: Number(args.port),
    tls: false,
    // Long enough that an answer the provider retries (UNKNOWN) until its deadline shows in
    // report.seconds (test_clients.py checks the no-default answer is prompt).
    deadlineMs: 5000,
    retryBackoffMs: 100,
    retryBackoffMaxMs: 500,
    retryGracePeriod: 2,
  });
  const started = performance.now();
  await OpenFeature.setProviderAndWait(provider);
  const client = OpenFeature.getClient();
  report.ready = client.providerStatus === ProviderStatus.READY;
  report.readySeconds = Math.round(performance.now() - started) / 1000;

  report.seconds = {};
  report.results = await evaluateAll(client, spec.checks, report.seconds);

  // Edit the flag file as a deploy would: write aside, then rename over it.
  const temporary = `${args["flag-file"]}.edit`;
  copyFileSync(args["changed-file"], temporary);
  renameSync(temporary, args["flag-file"]);
  const timeout = new Promise((resolve) => setTimeout(() => resolve(false), 10_000).unref());
  report.configurationChanged = await Promise.race([changed, timeout]);
  report.flagsChanged = [...changedFlags].sort();
  report.afterChange = await evaluateAll(client, spec.afterChange);

  await OpenFeature.close();
  process.stdout.write(`${JSON.stringify(report)}\n`);
}

main().then(
  () => process.exit(0),
  (error) => {
    console.error(error);
    process.exit(1);
  },
);
