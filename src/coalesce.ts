/**
 * Natural batching of concurrent calls on one pgqueue backend: a call made
 * while `maxInFlight` statements of its kind are already running waits and is
 * merged with the others that arrived meanwhile into the next statement. A
 * lone call runs at once, unless the kind has a `lingerMs`: then the first
 * call of an idle moment waits that long for company (or until `maxWeight`
 * is reached), for calls that come one at a time but need no haste — acks.
 * Under load this turns N one-message receives (or acks) into one statement
 * and one commit, which is what the commit-bound one-at-a-time path needs.
 * A kind may also mark some calls as never lingering (a receive, which
 * someone waits on), and may `gather`: callers that answer each result with
 * a new call (a consumer acks what it received, then receives again) then
 * all meet in the next statement instead of the first of them running alone.
 */

interface Waiting<In, Out> {
  input: In;
  weight: number;
  resolve: (out: Out) => void;
  reject: (error: unknown) => void;
}

export interface CoalescerOptions<In, Out> {
  /** Runs one merged statement; returns one output per input, in order. */
  run: (inputs: In[]) => Promise<Out[]>;
  /** Size of one input (messages asked for, ids to delete). */
  weight: (input: In) => number;
  /** A merged statement takes inputs up to this total weight (at least one input). */
  maxWeight: number;
  maxInFlight: number;
  /** More statements in flight, up to this many, while a full one (maxWeight) is waiting (default maxInFlight). */
  maxInFlightWhenFull?: number;
  /** How long a call waits for others to merge with before it runs (default 0: at once). */
  lingerMs?: number;
  /** Whether a call may linger (default: every call); one that may not runs at once, with the lingering ones. */
  lingers?: (input: In) => boolean;
  /**
   * Holds a finished statement's place for one turn of the event loop, until
   * its callers' follow-up calls are in, so that they share the next statement.
   */
  gather?: boolean;
}

export class Coalescer<In, Out> {
  readonly #waiting: Waiting<In, Out>[] = [];
  #waitingWeight = 0;
  #inFlight = 0;
  #linger: ReturnType<typeof setTimeout> | undefined;

  constructor(private readonly options: CoalescerOptions<In, Out>) {}

  submit(input: In): Promise<Out> {
    return new Promise<Out>((resolve, reject) => {
      const weight = this.options.weight(input);
      this.#waiting.push({ input, weight, resolve, reject });
      this.#waitingWeight += weight;
      const lingerMs = this.options.lingerMs ?? 0;
      const lingers = lingerMs > 0 && (this.options.lingers?.(input) ?? true);
      if (!lingers || this.#waitingWeight >= this.options.maxWeight) this.#pump();
      else
        this.#linger ??= setTimeout(() => {
          this.#linger = undefined;
          this.#pump();
        }, lingerMs);
    });
  }

  #pump(): void {
    if (this.#linger !== undefined) {
      clearTimeout(this.#linger);
      this.#linger = undefined;
    }
    while (this.#waiting.length > 0 && this.#inFlight < this.#limit()) {
      const batch: Waiting<In, Out>[] = [];
      let weight = 0;
      for (;;) {
        const next = this.#waiting[0];
        if (next === undefined) break;
        if (batch.length > 0 && weight + next.weight > this.options.maxWeight) break;
        this.#waiting.shift();
        this.#waitingWeight -= next.weight;
        batch.push(next);
        weight += next.weight;
      }
      this.#inFlight++;
      this.#execute(batch).finally(() => {
        if (this.options.gather === true) setImmediate(() => this.#release());
        else this.#release();
      });
    }
  }

  #limit(): number {
    const { maxInFlight, maxInFlightWhenFull = maxInFlight, maxWeight } = this.options;
    return this.#waitingWeight >= maxWeight
      ? Math.max(maxInFlight, maxInFlightWhenFull)
      : maxInFlight;
  }

  #release(): void {
    this.#inFlight--;
    this.#pump();
  }

  async #execute(batch: Waiting<In, Out>[]): Promise<void> {
    try {
      const outputs = await this.options.run(batch.map((w) => w.input));
      batch.forEach((w, i) => {
        const out = outputs[i];
        if (out === undefined) w.reject(new Error("coalesced statement returned too few results"));
        else w.resolve(out);
      });
    } catch (error) {
      for (const w of batch) w.reject(error);
    }
  }
}
