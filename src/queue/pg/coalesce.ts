/**
 * Natural batching of concurrent calls on one pgqueue backend: a call made
 * while `maxInFlight` statements of its kind are already running waits and is
 * merged with the others that arrived meanwhile into the next statement. A
 * lone call runs at once; nothing ever waits on a timer. Under load this turns
 * N one-message receives (or acks) into one statement and one commit, which
 * is what the commit-bound one-at-a-time path needs.
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
}

export class Coalescer<In, Out> {
  readonly #waiting: Waiting<In, Out>[] = [];
  #inFlight = 0;

  constructor(private readonly options: CoalescerOptions<In, Out>) {}

  submit(input: In): Promise<Out> {
    return new Promise<Out>((resolve, reject) => {
      this.#waiting.push({ input, weight: this.options.weight(input), resolve, reject });
      this.#pump();
    });
  }

  #pump(): void {
    while (this.#inFlight < this.options.maxInFlight && this.#waiting.length > 0) {
      const batch: Waiting<In, Out>[] = [];
      let weight = 0;
      for (;;) {
        const next = this.#waiting[0];
        if (next === undefined) break;
        if (batch.length > 0 && weight + next.weight > this.options.maxWeight) break;
        this.#waiting.shift();
        batch.push(next);
        weight += next.weight;
      }
      this.#inFlight++;
      this.#execute(batch).finally(() => {
        this.#inFlight--;
        this.#pump();
      });
    }
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
