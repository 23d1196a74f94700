package io.github.flagsidecar;

import com.google.protobuf.ListValue;
import com.google.protobuf.NullValue;
import com.google.protobuf.Struct;
import com.google.protobuf.Value;
import java.util.ArrayList;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/** JSON values between Java objects and protobuf's Struct and Value, as the API carries them. */
final class Values {
  private Values() {}

  /** A Struct of the fields; an IllegalArgumentException names a value protobuf cannot carry. */
  static Struct toStruct(Map<String, ?> fields) {
    Struct.Builder struct = Struct.newBuilder();
    fields.forEach((key, value) -> struct.putFields(key, toValue(value, key)));
    return struct.build();
  }

  private static Value toValue(Object value, String path) {
    Value.Builder message = Value.newBuilder();
    if (value == null) {
      message.setNullValue(NullValue.NULL_VALUE);
    } else if (value instanceof String text) {
      message.setStringValue(text);
    } else if (value instanceof Boolean bool) {
      message.setBoolValue(bool);
    } else if (value instanceof Number number) {
      // Every JSON number travels as a double; a long beyond 2^53 is rounded, as in any RPC client.
      message.setNumberValue(number.doubleValue());
    } else if (value instanceof Map<?, ?> map) {
      Struct.Builder struct = Struct.newBuilder();
      for (Map.Entry<?, ?> entry : map.entrySet()) {
        if (!(entry.getKey() instanceof String key)) {
          throw new IllegalArgumentException(path + ": a map key is not a String: " + entry.getKey());
        }
        struct.putFields(key, toValue(entry.getValue(), path + "." + key));
      }
      message.setStructValue(struct);
    } else if (value instanceof Iterable<?> items) {
      ListValue.Builder list = ListValue.newBuilder();
      int index = 0;
      for (Object item : items) {
        list.addValues(toValue(item, path + "[" + index++ + "]"));
      }
      message.setListValue(list);
    } else {
      throw new IllegalArgumentException(
          path + ": " + value.getClass().getName() + " is not a JSON value");
    }
    return message.build();
  }

  /** The Java form of a JSON value: null, Boolean, Double, String, List or Map (unmodifiable). */
  static Object toJava(Value value) {
    return switch (value.getKindCase()) {
      case NULL_VALUE, KIND_NOT_SET -> null;
      case BOOL_VALUE -> value.getBoolValue();
      case NUMBER_VALUE -> value.getNumberValue();
      case STRING_VALUE -> value.getStringValue();
      case LIST_VALUE -> {
        List<Object> list = new ArrayList<>();
        value.getListValue().getValuesList().forEach(item -> list.add(toJava(item)));
        yield Collections.unmodifiableList(list);
      }
      case STRUCT_VALUE -> {
        Map<String, Object> map = new LinkedHashMap<>();
        value.getStructValue().getFieldsMap().forEach((key, item) -> map.put(key, toJava(item)));
        yield Collections.unmodifiableMap(map);
      }
    };
  }
}
