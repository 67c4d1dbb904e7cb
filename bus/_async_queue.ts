// An async iterator fed by pushes: fork-join replies as they arrive, life-cycle events. It
// holds at most `max` unread items (the oldest are dropped and counted beyond that), so a
// consumer that stops reading cannot grow memory without bound.

export class AsyncQueue<T> implements AsyncIterableIterator<T> {
  #items: T[] = [];
  #head = 0;
  #waiter: { resolve: (r: IteratorResult<T>) => void; reject: (e: unknown) => void } | undefined;
  #done = false;
  #error: unknown = undefined;
  /** Items dropped because `max` were unread. */
  dropped = 0;

  constructor(readonly max: number = Infinity, readonly onClose?: () => void) {}

  /** Adds an item; false when the queue has ended. */
  push(item: T): boolean {
    if (this.#done) return false;
    const w = this.#waiter;
    if (w !== undefined) {
      this.#waiter = undefined;
      w.resolve({ value: item, done: false });
      return true;
    }
    if (this.#items.length - this.#head >= this.max) {
      this.#head++;
      this.dropped++;
    }
    this.#items.push(item);
    return true;
  }

  /** Ends the iteration after the items already pushed, with `error` thrown then if given. */
  end(error?: unknown): void {
    if (this.#done) return;
    this.#done = true;
    this.#error = error;
    this.onClose?.();
    const w = this.#waiter;
    this.#waiter = undefined;
    if (w === undefined) return;
    if (error === undefined) w.resolve({ value: undefined, done: true });
    else w.reject(error);
  }

  next(): Promise<IteratorResult<T>> {
    if (this.#head < this.#items.length) {
      const value = this.#items[this.#head++];
      if (this.#head === this.#items.length) {
        this.#items = [];
        this.#head = 0;
      }
      return Promise.resolve({ value, done: false });
    }
    if (this.#done) {
      const error = this.#error;
      this.#error = undefined; // thrown once
      return error === undefined
        ? Promise.resolve({ value: undefined, done: true })
        : Promise.reject(error);
    }
    return new Promise((resolve, reject) => (this.#waiter = { resolve, reject }));
  }

  /** The consumer stopped early (`break`): nothing more is kept. */
  return(): Promise<IteratorResult<T>> {
    this.#items = [];
    this.#head = 0;
    this.end();
    return Promise.resolve({ value: undefined, done: true });
  }

  [Symbol.asyncIterator](): AsyncIterableIterator<T> {
    return this;
  }
}
