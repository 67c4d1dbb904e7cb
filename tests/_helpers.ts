// Shared test helpers: isolated platforms, temporary config folders, small waits, a stub mesh.
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import process from "node:process";
import net from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { configure, reset } from "@logtape/logtape";
import type { LogRecord } from "@logtape/logtape";
import { Platform } from "../mod.ts";
import type { EventEnvelope, MeshTransport, PlatformOptions } from "../mod.ts";
import type { LifeCycleEvent } from "../connector/mod.ts";

/** A platform that reads no files, flags or environment unless the test gives them. */
export function testPlatform(options: PlatformOptions = {}): Platform {
  return new Platform({ dir: "/nonexistent-minimesh-config", args: [], env: {}, ...options });
}

// The folders configDir made, removed when the test process exits.
const made: string[] = [];
const removeMade = () => {
  for (const dir of made.splice(0)) rmSync(dir, { recursive: true, force: true });
};
process.once("exit", removeMade);
globalThis.addEventListener?.("unload", removeMade); // Deno ends each test file's worker so

/** A new temporary folder holding the given files (removed when the process exits). */
export function configDir(files: Record<string, string>): string {
  const dir = mkdtempSync(join(tmpdir(), "minimesh-test-"));
  made.push(dir);
  for (const [name, text] of Object.entries(files)) writeFileSync(join(dir, name), text);
  return dir;
}

/** A TCP port on 127.0.0.1 that was free a moment ago. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer().listen(0, "127.0.0.1", () => {
      const port = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(port));
    });
    s.on("error", reject);
  });
}

/** Resolves after `ms` milliseconds. */
export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** A promise with its resolve function, without Promise.withResolvers (absent on Node 20). */
export function deferred<T = void>(): { promise: Promise<T>; resolve: (v: T) => void } {
  let resolve!: (v: T) => void;
  const promise = new Promise<T>((r) => (resolve = r));
  return { promise, resolve };
}

/** Captures minimesh's log records as text until `stop()` is called. */
export async function captureLogs(): Promise<{ lines: string[]; stop: () => Promise<void> }> {
  const lines: string[] = [];
  await configure({
    reset: true,
    sinks: { memory: (r: LogRecord) => lines.push(`${r.level}: ${renderMessage(r)}`) },
    loggers: [
      { category: ["minimesh"], sinks: ["memory"], lowestLevel: "debug" },
      { category: ["logtape", "meta"], sinks: [], lowestLevel: "error" },
    ],
  });
  return { lines, stop: () => reset() };
}

function renderMessage(r: LogRecord): string {
  return r.message.map((part) => typeof part === "string" ? part : String(part)).join("");
}

/** A mesh that reaches everything and hands every sent event to `send`. */
export function stubMesh(send: (e: EventEnvelope) => void): MeshTransport {
  return {
    reaches: () => true,
    knows: () => true,
    origins: () => [],
    routeChanged() {},
    describe: () => ({}),
    broadcast: () => Promise.resolve(),
    send(e) {
      send(e);
      return Promise.resolve();
    },
  };
}

/**
 * Calls `fn` with each of the connector's life-cycle events from now on (until it stops), in
 * the background: its async iterable, read by a loop of its own.
 */
export function onLifeCycle(
  connector: { lifeCycle(): AsyncIterableIterator<LifeCycleEvent> },
  fn: (e: LifeCycleEvent) => void,
): void {
  const events = connector.lifeCycle(); // subscribed now, read below
  (async () => {
    for await (const e of events) fn(e);
  })();
}
