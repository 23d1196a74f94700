package flagsidecar.flagd;

import com.fasterxml.jackson.databind.ObjectMapper;
import dev.openfeature.contrib.providers.flagd.Config;
import dev.openfeature.contrib.providers.flagd.FlagdOptions;
import dev.openfeature.contrib.providers.flagd.FlagdProvider;
import dev.openfeature.sdk.Client;
import dev.openfeature.sdk.ImmutableContext;
import dev.openfeature.sdk.OpenFeatureAPI;
import dev.openfeature.sdk.ProviderState;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeSet;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicReference;

/**
 * The OpenFeature Java SDK + flagd provider (java-sdk-contrib) against a running sidecar; one JSON
 * report on stdout, read by tests/flagd/test_java_provider.py.
 *
 * <pre>
 *   FlagdClient rpc --port P --spec checks.json --flag-file F --changed-file C
 *       the checks of tests/flagd/clients/checks.json over RPC, as node/client.mjs does
 *   FlagdClient in-process --rpc-port P --sync-port S --checks CHECKS.json [--selector SEL]
 *       [--flag-file F --changed-file C --changed-flag KEY]
 *       each check in-process and over RPC, as clients/py_in_process.py does
 *   FlagdClient offline --flags FLAGD.json --checks CHECKS.json
 *       each check by the in-process evaluator on a flagd document read from a file (no sidecar):
 *       how this provider evaluates a translation the sidecar does not serve it (fractional)
 * </pre>
 */
public final class FlagdClient {
    private static final ObjectMapper JSON = new ObjectMapper();
    private static final long WAIT_SECONDS = 15;

    private FlagdClient() {}

    public static void main(String[] argv) throws Exception {
        if (argv.length == 0) {
            throw new IllegalArgumentException("usage: FlagdClient rpc|in-process --option value ...");
        }
        Map<String, String> args = options(argv);
        Map<String, Object> report =
                switch (argv[0]) {
                    case "rpc" -> rpc(args);
                    case "in-process" -> inProcess(args);
                    case "offline" -> offline(args);
                    default -> throw new IllegalArgumentException("unknown mode " + argv[0]);
                };
        System.out.println(JSON.writeValueAsString(report));
        System.out.flush();
        // The providers' gRPC threads are not all daemons: a clean shutdown can still linger.
        System.exit(0);
    }

    private static Map<String, String> options(String[] argv) {
        Map<String, String> args = new HashMap<>();
        for (int i = 1; i + 1 < argv.length; i += 2) {
            if (!argv[i].startsWith("--")) {
                throw new IllegalArgumentException("expected --option, got " + argv[i]);
            }
            args.put(argv[i].substring(2), argv[i + 1]);
        }
        return args;
    }

    private static String required(Map<String, String> args, String name) {
        String value = args.get(name);
        if (value == null) {
            throw new IllegalArgumentException("--" + name + " is required");
        }
        return value;
    }

    private static FlagdOptions.FlagdOptionsBuilder common(String host) {
        return FlagdOptions.builder()
                .host(host)
                .tls(false)
                .retryBackoffMs(100)
                .retryGracePeriod(2);
    }

    /** Every check of the spec over RPC, then a flag-file edit and PROVIDER_CONFIGURATION_CHANGED. */
    private static Map<String, Object> rpc(Map<String, String> args) throws Exception {
        Map<String, Object> spec = read(Path.of(required(args, "spec")));
        String changedFlag = (String) spec.get("changedFlag");
        OpenFeatureAPI api = OpenFeatureAPI.getInstance();
        Set<String> flagsChanged = new TreeSet<>();
        CountDownLatch changed = new CountDownLatch(1);
        api.onProviderConfigurationChanged(details -> {
            synchronized (flagsChanged) {
                flagsChanged.addAll(details.getFlagsChanged() == null ? List.of() : details.getFlagsChanged());
                if (flagsChanged.contains(changedFlag)) {
                    changed.countDown();
                }
            }
        });
        FlagdProvider provider = new FlagdProvider(common(args.getOrDefault("host", "127.0.0.1"))
                .resolverType(Config.Resolver.RPC)
                .port(Integer.parseInt(required(args, "port")))
                // Long enough that an answer the provider retries until its deadline shows in
                // report.seconds (test_clients.py's check_report wants the no-default one prompt),
                // and longer than 0.11.15's retries of a NOT_FOUND or INVALID_ARGUMENT answer.
                .deadline(5000)
                .build());

        Map<String, Object> report = new LinkedHashMap<>();
        report.put("client", "java");
        long started = System.nanoTime();
        api.setProviderAndWait(provider);
        Client client = api.getClient();
        report.put("ready", client.getProviderState() == ProviderState.READY);
        report.put("readySeconds", seconds(started));

        Map<String, Object> timings = new LinkedHashMap<>();
        report.put("results", evaluateAll(client, checks(spec, "checks"), timings));
        report.put("seconds", timings);

        replace(Path.of(required(args, "changed-file")), Path.of(required(args, "flag-file")));
        report.put("configurationChanged", changed.await(10, TimeUnit.SECONDS));
        synchronized (flagsChanged) {
            report.put("flagsChanged", new ArrayList<>(flagsChanged));
        }
        report.put("afterChange", evaluateAll(client, checks(spec, "afterChange"), new HashMap<>()));
        api.shutdown();
        return report;
    }

    /** Each check in-process (SyncFlags on the sync port) and over RPC, with the sync context. */
    private static Map<String, Object> inProcess(Map<String, String> args) throws Exception {
        List<Map<String, Object>> checks = readChecks(Path.of(required(args, "checks")));
        String host = args.getOrDefault("host", "127.0.0.1");
        String changedFlag = args.get("changed-flag");
        AtomicReference<Map<String, Object>> syncContext = new AtomicReference<>();
        FlagdProvider inProcess = new FlagdProvider(common(host)
                .resolverType(Config.Resolver.IN_PROCESS)
                .port(Integer.parseInt(required(args, "sync-port")))
                .selector(args.get("selector"))
                // The provider waits twice the deadline for its first flag set.
                .deadline(3000)
                .contextEnricher(metadata -> {
                    // What the provider merges into every evaluation: the report shows it.
                    syncContext.set(Values.plain(metadata));
                    return new ImmutableContext(metadata.asMap());
                })
                .build());
        FlagdProvider rpc = new FlagdProvider(common(host)
                .resolverType(Config.Resolver.RPC)
                .port(Integer.parseInt(required(args, "rpc-port")))
                // 0.11.15 retries NOT_FOUND and INVALID_ARGUMENT answers (three attempts, up to
                // 1 s and 2 s apart): the deadline must outlast them, or they end GENERAL.
                .deadline(5000)
                .cacheType("disabled") // every answer is the provider's own, not a cached one
                .build());

        OpenFeatureAPI api = OpenFeatureAPI.getInstance();
        Client local = api.getClient("in-process");
        Client remote = api.getClient("rpc");
        AtomicReference<CountDownLatch> changed = new AtomicReference<>(new CountDownLatch(1));
        local.onProviderConfigurationChanged(details -> {
            List<String> keys = details.getFlagsChanged();
            if (changedFlag != null && keys != null && keys.contains(changedFlag)) {
                changed.get().countDown();
            }
        });
        Map<String, Object> report = new LinkedHashMap<>();
        report.put("ready", ready(api, "in-process", inProcess, local));
        report.put("rpcReady", ready(api, "rpc", rpc, remote));
        report.put("syncContext", syncContext.get());
        if ((Boolean) report.get("ready") && (Boolean) report.get("rpcReady")) {
            report.put("results", both(local, remote, checks));
            if (args.containsKey("changed-file")) {
                changed.set(new CountDownLatch(1)); // the first sync reports every flag as changed
                replace(Path.of(args.get("changed-file")), Path.of(required(args, "flag-file")));
                report.put("changed", changed.get().await(WAIT_SECONDS, TimeUnit.SECONDS));
                List<Map<String, Object>> again = new ArrayList<>();
                for (Map<String, Object> check : checks) {
                    if (check.get("flag").equals(changedFlag)) {
                        again.add(check);
                    }
                }
                report.put("afterChange", both(local, remote, again));
            }
        }
        api.shutdown();
        return report;
    }

    /** Each check by the in-process evaluator on a flagd document read from a file. */
    private static Map<String, Object> offline(Map<String, String> args) throws Exception {
        List<Map<String, Object>> checks = readChecks(Path.of(required(args, "checks")));
        FlagdProvider provider = new FlagdProvider(FlagdOptions.builder()
                .resolverType(Config.Resolver.IN_PROCESS)
                .offlineFlagSourcePath(required(args, "flags"))
                // The first parse may take twice this; the default (500 ms) is tight on a busy machine.
                .deadline(5000)
                .build());
        OpenFeatureAPI api = OpenFeatureAPI.getInstance();
        Client client = api.getClient("offline");
        Map<String, Object> report = new LinkedHashMap<>();
        report.put("ready", ready(api, "offline", provider, client));
        List<Map<String, Object>> results = new ArrayList<>();
        for (Map<String, Object> check : checks) {
            results.add(Checks.evaluate(client, check));
        }
        report.put("results", results);
        api.shutdown();
        return report;
    }

    private static List<Map<String, Object>> readChecks(Path path) throws Exception {
        return JSON.readValue(path.toFile(), JSON.getTypeFactory().constructCollectionType(List.class, Map.class));
    }

    private static boolean ready(OpenFeatureAPI api, String domain, FlagdProvider provider, Client client) {
        try {
            api.setProviderAndWait(domain, provider);
        } catch (RuntimeException e) {
            System.err.println(domain + " provider did not become ready: " + e);
        }
        return client.getProviderState() == ProviderState.READY;
    }

    private static List<Map<String, Object>> both(Client local, Client remote, List<Map<String, Object>> checks) {
        List<Map<String, Object>> results = new ArrayList<>();
        for (Map<String, Object> check : checks) {
            Map<String, Object> result = new LinkedHashMap<>();
            result.put("inProcess", Checks.evaluate(local, check));
            result.put("rpc", Checks.evaluate(remote, check));
            results.add(result);
        }
        return results;
    }

    private static Map<String, Object> evaluateAll(
            Client client, List<Map<String, Object>> checks, Map<String, Object> timings) {
        Map<String, Object> results = new LinkedHashMap<>();
        for (Map<String, Object> check : checks) {
            long started = System.nanoTime();
            results.put((String) check.get("name"), Checks.evaluate(client, check));
            timings.put((String) check.get("name"), seconds(started));
        }
        return results;
    }

    @SuppressWarnings("unchecked")
    private static List<Map<String, Object>> checks(Map<String, Object> spec, String name) {
        return (List<Map<String, Object>>) spec.get(name);
    }

    @SuppressWarnings("unchecked")
    private static Map<String, Object> read(Path path) throws Exception {
        return JSON.readValue(path.toFile(), Map.class);
    }

    /** Edit the flag file as a deploy would: write aside, then rename over it. */
    private static void replace(Path source, Path target) throws Exception {
        Path aside = target.resolveSibling(target.getFileName() + ".edit");
        Files.copy(source, aside, StandardCopyOption.REPLACE_EXISTING);
        Files.move(aside, target, StandardCopyOption.REPLACE_EXISTING, StandardCopyOption.ATOMIC_MOVE);
    }

    private static double seconds(long startedNanos) {
        return Math.round((System.nanoTime() - startedNanos) / 1e6) / 1000.0;
    }
}
