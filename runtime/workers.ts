/**
 * Worker functions: CPU-bound functions that run in worker threads (`node:worker_threads`, in
 * Deno and in Node), so that the event loop (timers, sockets, Kafka) keeps ticking while they
 * compute. A route registered this way behaves as any other: `instances` threads, each running
 * one event at a time, the others waiting in the route's queue.
 *
 * @module
 */
import { resolve } from "node:path";
import { pathToFileURL } from "node:url";
import { Worker } from "node:worker_threads";
import { AppError } from "../bus/errors.ts";
import { logger } from "../bus/_log.ts";
import type { Platform } from "../bus/platform.ts";

const log = logger("workers");

/** Options of {@link registerWorker}. */
export interface WorkerFunctionOptions {
  /** Threads, and so events computed at once (default 1). */
  instances?: number;
  /** Never advertised to the mesh (default false). */
  isPrivate?: boolean;
}

/** The threads of one worker function; `await using` (or `close`) ends them. */
export interface WorkerFunction extends AsyncDisposable {
  /** The route it serves. */
  readonly route: string;
  /** Releases the route and ends the threads. */
  close(): Promise<void>;
}

interface Reply {
  id?: number;
  ready?: boolean;
  result?: unknown;
  error?: { message: string; status: number };
}

// The host program beside this module: `.ts` from the sources, `.js` in the npm package.
const HOST = new URL(
  import.meta.url.endsWith(".ts") ? "./_worker_host.ts" : "./_worker_host.js",
  import.meta.url,
);

// One thread; a thread that dies fails what it was running and is started again.
class Thread {
  #worker: Worker | undefined;
  #pending = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();
  #next = 0;
  #closed = false;

  constructor(readonly route: string, readonly module: string) {}

  #start(): Worker {
    const w = new Worker(HOST, { workerData: { module: this.module } });
    w.on("message", (m: Reply) => {
      if (m.id === undefined) return;
      const p = this.#pending.get(m.id);
      this.#pending.delete(m.id);
      if (m.error) p?.reject(new AppError(m.error.status, m.error.message));
      else p?.resolve(m.result);
    });
    const fail = (why: string) => {
      if (this.#worker === w) this.#worker = undefined;
      for (const p of this.#pending.values()) {
        p.reject(new AppError(500, `Worker thread of ${this.route} ${why}`));
      }
      this.#pending.clear();
    };
    w.on("error", (e: Error) => {
      log.error("Worker thread of {route} failed: {message}", {
        route: this.route,
        message: e.message,
      });
      fail("failed");
    });
    w.on("exit", (code: number) => {
      if (!this.#closed) fail(`exited (${code})`);
    });
    return w;
  }

  run(headers: Record<string, string>, body: unknown, instance: number): Promise<unknown> {
    if (this.#closed) return Promise.reject(new AppError(503, `${this.route} is stopping`));
    const w = this.#worker ??= this.#start();
    const id = ++this.#next;
    return new Promise((resolve, reject) => {
      this.#pending.set(id, { resolve, reject });
      try {
        w.postMessage({ id, headers, body, instance });
      } catch (e) {
        this.#pending.delete(id);
        reject(new AppError(400, `Cannot pass the event to a worker: ${(e as Error).message}`));
      }
    });
  }

  async close(): Promise<void> {
    this.#closed = true;
    await this.#worker?.terminate();
    this.#worker = undefined;
  }
}

/**
 * Registers a function that runs in worker threads: `module` (a file URL or path) must export
 * it as its default export, `(headers, body, instance) => result`, as a route's function.
 * Bodies and results cross threads by structured clone. The threads start on first use and
 * end at {@link Platform.stop} or `close()`.
 *
 * @throws {InvalidRouteError} For a bad route name.
 * @throws {RangeError} For a bad instance count.
 * @example
 * ```ts
 * import type { Platform } from "@minimesh/core";
 * import { registerWorker } from "@minimesh/core/workers";
 * // Needs a module file exporting the function (see tests/fixtures/cpu_work.ts).
 * export function fibonacci(platform: Platform, module: URL): void {
 *   registerWorker(platform, "math.fibonacci", module, { instances: 4 });
 * }
 * ```
 */
export function registerWorker(
  platform: Platform,
  route: string,
  module: string | URL,
  options: WorkerFunctionOptions = {},
): WorkerFunction {
  const instances = options.instances ?? 1;
  const url = module instanceof URL ? module.href : pathToFileURL(resolve(module)).href;
  const threads = Array.from({ length: instances }, () => new Thread(route, url));
  const fn = (headers: Record<string, string>, body: unknown, instance: number) =>
    threads[instance - 1].run(headers, body, instance);
  if (options.isPrivate) platform.registerPrivate(route, fn, instances);
  else platform.register(route, fn, instances);
  const end = () => Promise.all(threads.map((t) => t.close())).then(() => {});
  const off = platform.onStop({ name: `worker threads of ${route}`, stop: end });
  const close = () => {
    off();
    platform.release(route);
    return end();
  };
  return { route, close, [Symbol.asyncDispose]: close };
}
