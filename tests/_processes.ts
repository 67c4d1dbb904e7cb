// Real child processes for tests: a Deno program whose log lines can be awaited.
import { spawn } from "node:child_process";
import type { ChildProcess } from "node:child_process";
import process from "node:process";
import { fileURLToPath } from "node:url";
import { endWithMe } from "./_reap.ts";

/** A running child Deno program. */
export interface DenoProcess {
  proc: ChildProcess;
  logs: string[];
  /** Resolves once the process has exited. */
  exited: Promise<void>;
  /**
   * Resolves with the first log line (seen so far or later) matching `re`; rejects when the
   * process exits first or `timeoutMs` passes, with its logs in the message.
   */
  waitFor(re: RegExp, timeoutMs?: number): Promise<string>;
  /**
   * Sends `signal` (if still running) and waits for the exit.
   *
   * @throws {Error} When the process logged an uncaught error or an unhandled rejection.
   */
  stop(signal?: NodeJS.Signals): Promise<void>;
}

/**
 * Runs `deno run -A <file in this repo> ...args`; with `netns`, inside that network namespace
 * (a host of tests/_bed.ts).
 */
export function spawnDeno(
  file: string,
  args: string[],
  options: { netns?: string; name?: string } = {},
): DenoProcess {
  const path = fileURLToPath(new URL(`../${file}`, import.meta.url));
  const deno = [process.execPath, "run", "-A", path, ...args];
  const [command, ...rest] = options.netns ? ["ip", "netns", "exec", options.netns, ...deno] : deno;
  return spawnProcess(command, rest, options.name ?? file);
}

/** Runs any program, with its log lines awaitable (`name` appears in error messages). */
export function spawnProcess(
  command: string,
  args: string[],
  name: string,
  cwd?: string,
): DenoProcess {
  const file = name;
  const proc = spawn(command, args, {
    cwd,
    stdio: ["ignore", "pipe", "pipe"],
    env: { ...process.env, NO_COLOR: "1" },
  });
  endWithMe(proc);
  const logs: string[] = [];
  const waiters: { re: RegExp; resolve: (line: string) => void; reject: (e: Error) => void }[] = [];
  let done = false;
  // Per stream: a chunk may end in the middle of a line, which the next one completes.
  const lines = () => {
    const decoder = new TextDecoder();
    let partial = "";
    return (chunk: Uint8Array) => {
      const parts = (partial + decoder.decode(chunk, { stream: true })).split("\n");
      partial = parts.pop()!;
      onLines(parts);
    };
  };
  const onLines = (complete: string[]) => {
    for (const line of complete) {
      if (!line.trim()) continue;
      logs.push(line);
      for (const w of [...waiters]) {
        if (w.re.test(line)) {
          waiters.splice(waiters.indexOf(w), 1);
          w.resolve(line);
        }
      }
    }
  };
  proc.stdout!.on("data", lines());
  proc.stderr!.on("data", lines());
  const exited = new Promise<void>((r) =>
    proc.on("exit", (code, signal) => {
      done = true;
      for (const w of waiters.splice(0)) {
        w.reject(new Error(`${file} exited (${code ?? signal}); logs:\n${logs.join("\n")}`));
      }
      r();
    })
  );
  const waitFor = (re: RegExp, timeoutMs = 30_000) => {
    const seen = logs.find((l) => re.test(l));
    if (seen) return Promise.resolve(seen);
    if (done) return Promise.reject(new Error(`${file} has exited; logs:\n${logs.join("\n")}`));
    return new Promise<string>((resolve, reject) => {
      const w = {
        re,
        resolve: (line: string) => {
          clearTimeout(timer);
          resolve(line);
        },
        reject: (e: Error) => {
          clearTimeout(timer);
          reject(e);
        },
      };
      const timer = setTimeout(() => {
        waiters.splice(waiters.indexOf(w), 1);
        reject(
          new Error(`no log line ${re} in ${timeoutMs} ms from ${file}; logs:\n${logs.join("\n")}`),
        );
      }, timeoutMs);
      waiters.push(w);
    });
  };
  return {
    proc,
    logs,
    exited,
    waitFor,
    async stop(signal: NodeJS.Signals = "SIGTERM") {
      if (!done) proc.kill(signal);
      await exited;
      // A library process never has an uncaught error or an unhandled rejection.
      const uncaught = logs.filter((l) => /uncaught|unhandled/i.test(l));
      if (uncaught.length > 0) {
        throw new Error(`${file} logged an uncaught error:\n${logs.join("\n")}`);
      }
    },
  };
}

/**
 * Stops every process (SIGKILL by default), then throws the first error of their `stop`: one that
 * logged an uncaught error fails the suite, and the others are still stopped.
 */
export async function stopAll(
  processes: (DenoProcess | undefined)[],
  signal: NodeJS.Signals = "SIGKILL",
): Promise<void> {
  const results = await Promise.allSettled(processes.map((p) => p?.stop(signal)));
  for (const r of results) if (r.status === "rejected") throw r.reason;
}
