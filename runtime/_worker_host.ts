// The program of one worker thread of a worker function (see workers.ts): it imports the
// application's module and runs its default export on each event it is given, one at a time.
import { parentPort, workerData } from "node:worker_threads";

interface Job {
  id: number;
  headers: Record<string, string>;
  body: unknown;
  instance: number;
}

const port = parentPort!;
const { module } = workerData as { module: string };
// A module that cannot be used fails each event with the reason (500), never the thread. The
// listener is attached at once: a message that arrives while the module loads would be lost.
const loaded = import(module).then(
  (m) => typeof m.default === "function" ? m.default : `${module} has no default export function`,
  (e) => `Cannot load ${module}: ${(e as Error).message}`,
) as Promise<((h: Record<string, string>, body: unknown, instance: number) => unknown) | string>;
port.on("message", async (job: Job) => {
  try {
    const fn = await loaded;
    if (typeof fn === "string") throw new Error(fn);
    const result = await fn(job.headers, job.body, job.instance);
    port.postMessage({ id: job.id, result });
  } catch (e) {
    const status = (e as { status?: unknown } | null)?.status;
    port.postMessage({
      id: job.id,
      error: {
        message: (e as Error)?.message ?? String(e),
        status: typeof status === "number" ? status : 500,
      },
    });
  }
});
