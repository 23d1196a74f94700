package flagsidecar.flagd;

import dev.openfeature.sdk.Client;
import dev.openfeature.sdk.ErrorCode;
import dev.openfeature.sdk.FlagEvaluationDetails;
import dev.openfeature.sdk.MutableContext;
import dev.openfeature.sdk.Value;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.Map;

/** One check of tests/flagd/clients/checks.json (or a test's own list) through an OpenFeature client. */
final class Checks {
    private Checks() {}

    /**
     * {flag, type, default, targetingKey?, context?} -> {value, reason, variant, errorCode}, the
     * shape every client of tests/flagd reports.
     */
    @SuppressWarnings("unchecked")
    static Map<String, Object> evaluate(Client client, Map<String, Object> check) {
        Map<String, Value> attributes = new HashMap<>();
        Map<String, Object> given = (Map<String, Object>) check.get("context");
        if (given != null) {
            given.forEach((key, value) -> attributes.put(key, Values.value(value)));
        }
        MutableContext context = new MutableContext((String) check.get("targetingKey"), attributes);
        String flag = (String) check.get("flag");
        Object fallback = check.get("default");
        FlagEvaluationDetails<?> details =
                switch ((String) check.get("type")) {
                    case "boolean" -> client.getBooleanDetails(flag, (Boolean) fallback, context);
                    case "string" -> client.getStringDetails(flag, (String) fallback, context);
                    case "integer" -> client.getIntegerDetails(flag, ((Number) fallback).intValue(), context);
                    case "float" -> client.getDoubleDetails(flag, ((Number) fallback).doubleValue(), context);
                    case "object" -> client.getObjectDetails(flag, Values.value(fallback), context);
                    default -> throw new IllegalArgumentException("unknown check type " + check.get("type"));
                };
        Map<String, Object> result = new LinkedHashMap<>();
        result.put("value", Values.plain(details.getValue()));
        result.put("reason", details.getReason());
        result.put("variant", details.getVariant());
        ErrorCode code = details.getErrorCode();
        result.put("errorCode", code == null ? null : code.name());
        return result;
    }
}
