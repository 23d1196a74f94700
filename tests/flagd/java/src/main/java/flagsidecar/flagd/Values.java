package flagsidecar.flagd;

import dev.openfeature.sdk.MutableStructure;
import dev.openfeature.sdk.Structure;
import dev.openfeature.sdk.Value;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/** JSON values (as Jackson reads them) to OpenFeature Values and back. */
final class Values {
    private Values() {}

    @SuppressWarnings("unchecked")
    static Value value(Object json) {
        if (json == null) {
            return new Value();
        } else if (json instanceof Boolean b) {
            return new Value(b);
        } else if (json instanceof String s) {
            return new Value(s);
        } else if (json instanceof Integer i) {
            return new Value(i);
        } else if (json instanceof Long l) {
            return new Value(l);
        } else if (json instanceof Number n) {
            return new Value(n.doubleValue());
        } else if (json instanceof List<?> list) {
            List<Value> values = new ArrayList<>();
            list.forEach(item -> values.add(value(item)));
            return new Value(values);
        } else if (json instanceof Map<?, ?> map) {
            MutableStructure structure = new MutableStructure();
            ((Map<String, Object>) map).forEach((key, item) -> structure.add(key, value(item)));
            return new Value(structure);
        }
        throw new IllegalArgumentException("not a JSON value: " + json.getClass());
    }

    /** An evaluated value (a Value for objects, a boxed scalar otherwise) as plain JSON data. */
    static Object plain(Object evaluated) {
        if (evaluated instanceof Structure structure) {
            return plain(structure);
        }
        if (!(evaluated instanceof Value v)) {
            return evaluated;
        }
        if (v.isNull()) {
            return null;
        } else if (v.isStructure()) {
            return plain(v.asStructure());
        } else if (v.isList()) {
            List<Object> items = new ArrayList<>();
            v.asList().forEach(item -> items.add(plain(item)));
            return items;
        }
        return v.asObject();
    }

    static Map<String, Object> plain(Structure structure) {
        Map<String, Object> map = new LinkedHashMap<>();
        structure.asMap().forEach((key, item) -> map.put(key, plain(item)));
        return map;
    }
}
