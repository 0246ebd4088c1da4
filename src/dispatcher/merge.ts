import { Coalescer } from "../coalesce";
import { createLogger } from "../log";

const log = createLogger("dispatcher");

/**
 * Concurrent calls of one kind on tasks (claims, completes) merged into one
 * statement: a call made while `maxInFlight` statements of its kind run
 * waits for one to end and goes with the others that came meanwhile
 * (src/coalesce.ts).
 * Each call keeps its own outcome, decided as by a statement of its own:
 *   - one statement holds each task once: a repeat (the same task id, in
 *     any case) goes in a statement after it, and sees what the first did;
 *     nor do two statements in flight hold one task (`exclusive`);
 *   - should a merged statement fail (nothing of it committed), each of its
 *     calls is run alone, so one call's failure is never another's.
 */

export interface MergeOptions<In, Out> {
  /** The task a call is about. */
  taskOf: (input: In) => string;
  /** One statement for calls on distinct tasks: one outcome per call, in order. */
  many: (inputs: In[]) => Promise<Out[]>;
  /** The statement of one call alone. */
  one: (input: In) => Promise<Out>;
  maxInFlight: number;
  maxMerged: number;
}

export function mergedCalls<In, Out>(o: MergeOptions<In, Out>): (input: In) => Promise<Out> {
  const running = new Map<string, Promise<unknown>>();
  const coalescer = new Coalescer<In, Out>({
    run: (inputs) => exclusive(o, running, inputs),
    weight: () => 1,
    maxWeight: o.maxMerged,
    maxInFlight: o.maxInFlight,
  });
  return (input) => coalescer.submit(input);
}

/**
 * With several statements of a kind in flight, two of them never hold one
 * task at once: a batch with a task another running statement holds waits
 * for that statement to end (and so sees what it did), as a repeat within
 * one batch does. `running` maps each task to the statement holding it.
 */
async function exclusive<In, Out>(
  o: MergeOptions<In, Out>,
  running: Map<string, Promise<unknown>>,
  inputs: In[],
): Promise<Out[]> {
  const tasks = inputs.map((input) => o.taskOf(input).toLowerCase());
  for (;;) {
    const holders = new Set<Promise<unknown>>();
    for (const task of tasks) {
      const holder = running.get(task);
      if (holder !== undefined) holders.add(holder);
    }
    if (holders.size === 0) break;
    await Promise.allSettled(holders);
  }
  const statement = distinct(o, inputs);
  for (const task of tasks) running.set(task, statement);
  try {
    return await statement;
  } finally {
    for (const task of tasks) if (running.get(task) === statement) running.delete(task);
  }
}

/** Calls on distinct tasks in one statement; should it fail, each alone. */
async function each<In, Out>(o: MergeOptions<In, Out>, inputs: In[]): Promise<Out[]> {
  const [first] = inputs;
  if (inputs.length === 1 && first !== undefined) return [await o.one(first)];
  try {
    return await o.many(inputs);
  } catch (err) {
    log.warn("a merged statement failed; its calls run one by one", { calls: inputs.length, err });
    return Promise.all(inputs.map(o.one));
  }
}

/** The first call on each task in one statement, repeats after it. */
async function distinct<In, Out>(o: MergeOptions<In, Out>, inputs: In[]): Promise<Out[]> {
  const seen = new Set<string>();
  const firsts: { at: number[]; inputs: In[] } = { at: [], inputs: [] };
  const repeats: { at: number[]; inputs: In[] } = { at: [], inputs: [] };
  inputs.forEach((input, i) => {
    const task = o.taskOf(input).toLowerCase();
    const part = seen.has(task) ? repeats : firsts;
    seen.add(task);
    part.at.push(i);
    part.inputs.push(input);
  });
  const out: Array<Out | undefined> = inputs.map(() => undefined);
  const place = (at: number[], got: Out[]) =>
    got.forEach((r, j) => {
      const i = at[j];
      if (i !== undefined) out[i] = r;
    });
  place(firsts.at, await each(o, firsts.inputs));
  if (repeats.inputs.length > 0) place(repeats.at, await distinct(o, repeats.inputs));
  return out.map((r, i) => {
    if (r === undefined) throw new Error(`a merged statement gave call ${i} no outcome`);
    return r;
  });
}
