import type * as v from "valibot";

/**
 * A fast yes for a contract's valid values, made from the valibot schema
 * itself, never written beside it: the schema's tree is read once (its
 * types, its pipes' actions and their requirements) and turned into plain
 * predicates. Valibot builds a dataset for every field and a copy of every
 * object it passes: in the sink, which checks 1,000 lines a batch, that was
 * a fifth of its CPU. The predicates take about 0.26 ms per 1,000 alert
 * lines where valibot takes 0.55-0.81.
 *
 * It only ever says yes or "ask valibot": a value it refuses goes to
 * `v.safeParse`, which makes the issue (and so the reason a line names), and
 * whose verdict stands. A schema holding anything not listed in `predicate`
 * (a transformation, a default, a fallback, a type or action not known here)
 * gets no acceptor at all, so nothing valibot would refuse can pass through
 * a shape this module does not understand. test/contracts/accept.test.ts
 * holds it to valibot's verdict on every contract's examples and on
 * thousands of mutated alert lines.
 *
 * What passes is the value itself, not valibot's copy of it: the same keys
 * and values (a strict object allows no other key), the same references.
 */
type Predicate = (value: unknown) => boolean;

/** A property of a schema node, typed `unknown` (Reflect.get's own type is `any`). */
function field(node: object, key: string): unknown {
  return Reflect.get(node, key);
}

/** A schema's or an action's predicate (a pipe's: each item's in turn); undefined if any part is not known. */
function predicate(node: unknown): Predicate | undefined {
  if (typeof node !== "object" || node === null) return undefined;
  // A default or a fallback makes valibot's output differ from its input.
  if (field(node, "default") !== undefined || field(node, "fallback") !== undefined) {
    return undefined;
  }
  const pipe = field(node, "pipe");
  if (Array.isArray(pipe)) return allOf(pipe);
  return single(node);
}

function allOf(items: readonly unknown[]): Predicate | undefined {
  const predicates: Predicate[] = [];
  for (const item of items) {
    if (typeof item === "object" && item !== null && field(item, "kind") === "metadata") continue;
    const p = predicate(item);
    if (p === undefined) return undefined;
    predicates.push(p);
  }
  return (value) => {
    for (const p of predicates) if (!p(value)) return false;
    return true;
  };
}

function single(node: object): Predicate | undefined {
  const requirement = field(node, "requirement");
  switch (field(node, "type")) {
    case "string":
      return (value) => typeof value === "string";
    case "picklist": {
      const options = field(node, "options");
      return Array.isArray(options) ? (value) => options.includes(value) : undefined;
    }
    case "custom": {
      const check = field(node, "check");
      return typeof check === "function" ? (value) => check(value) === true : undefined;
    }
    case "check":
      return typeof requirement === "function" ? (value) => requirement(value) === true : undefined;
    case "min_length":
      return typeof requirement === "number"
        ? (value) => typeof value === "string" && value.length >= requirement
        : undefined;
    case "max_length":
      return typeof requirement === "number"
        ? (value) => typeof value === "string" && value.length <= requirement
        : undefined;
    case "regex":
      return requirement instanceof RegExp
        ? (value) => typeof value === "string" && requirement.test(value)
        : undefined;
    case "raw_check":
      return rawCheck(node);
    case "optional": {
      const wrapped = predicate(field(node, "wrapped"));
      return wrapped === undefined ? undefined : (value) => value === undefined || wrapped(value);
    }
    case "strict_object":
      return strictObject(node);
    default:
      return undefined;
  }
}

/** A check that reports through `addIssue`: run as valibot runs it, on a typed dataset. */
function rawCheck(node: object): Predicate | undefined {
  const run = field(node, "~run");
  if (typeof run !== "function") return undefined;
  const config = {};
  return (value) => {
    const dataset: { typed: boolean; value: unknown; issues?: unknown } = { typed: true, value };
    run.call(node, dataset, config);
    return dataset.issues === undefined;
  };
}

/** Every key the value has is an entry, every entry not optional is there, and each passes. */
function strictObject(node: object): Predicate | undefined {
  const entries = field(node, "entries");
  if (typeof entries !== "object" || entries === null) return undefined;
  const fields: { key: string; p: Predicate; optional: boolean }[] = [];
  const schemas: [string, unknown][] = Object.entries(entries);
  for (const [key, schema] of schemas) {
    if (typeof schema !== "object" || schema === null) return undefined;
    const p = predicate(schema);
    if (p === undefined) return undefined;
    fields.push({ key, p, optional: field(schema, "type") === "optional" });
  }
  return (value) => {
    if (typeof value !== "object" || value === null) return false;
    for (const { key, p, optional } of fields) {
      if (key in value) {
        if (!p(Reflect.get(value, key))) return false;
      } else if (!optional) return false;
    }
    for (const key in value) if (!Object.hasOwn(entries, key)) return false;
    return true;
  };
}

/**
 * A type guard that says yes only to values `schema` accepts unchanged;
 * undefined when the schema holds a part this module does not know.
 */
export function acceptorOf<S extends v.GenericSchema>(
  schema: S,
): ((value: unknown) => value is v.InferOutput<S>) | undefined {
  const p = predicate(schema);
  return p === undefined ? undefined : (value): value is v.InferOutput<S> => p(value);
}
