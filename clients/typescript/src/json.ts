import { invalid } from "./errors";

/** A JSON value, as protobuf's google.protobuf.Value carries it. */
export type JsonValue = null | boolean | number | string | JsonValue[] | { [key: string]: JsonValue };

/**
 * Checks that fields hold only JSON values (undefined ones are left out, as JSON.stringify
 * does) before they go into a protobuf Struct, whose encoder would throw on a bigint and turn a
 * Date or a Map into an empty object. Undefined for no fields.
 */
export function structOf(
  fields: Readonly<Record<string, unknown>> | undefined,
  what: string,
): Record<string, JsonValue> | undefined {
  if (fields === undefined || fields === null) {
    return undefined;
  }
  const value = jsonOf(fields, what);
  if (value === null || typeof value !== "object" || Array.isArray(value)) {
    throw invalid(`${what}: not an object`);
  }
  return Object.keys(value).length > 0 ? value : undefined;
}

function jsonOf(value: unknown, path: string): JsonValue {
  switch (typeof value) {
    case "string":
    case "boolean":
    case "number":
      return value;
    case "object": {
      if (value === null) {
        return null;
      }
      if (Array.isArray(value)) {
        return value.map((item, i) => jsonOf(item, `${path}[${i}]`));
      }
      const prototype = Object.getPrototypeOf(value);
      if (prototype !== Object.prototype && prototype !== null) {
        throw invalid(`${path}: a ${value.constructor?.name ?? "non-plain object"} is not a JSON value`);
      }
      const object: Record<string, JsonValue> = {};
      for (const [key, item] of Object.entries(value)) {
        if (item !== undefined) {
          object[key] = jsonOf(item, `${path}.${key}`);
        }
      }
      return object;
    }
  }
  throw invalid(`${path}: a ${typeof value} is not a JSON value`);
}
