// What the mesh benchmarks share: a Deno child process awaited until it prints a line, and the
// median of a series.
import { spawn } from "node:child_process";
import type { ChildProcess } from "node:child_process";
import { appendFileSync } from "node:fs";
import process from "node:process";
import { endWithMe } from "../tests/_reap.ts";

/**
 * Runs `deno run -A <args>`; resolves with the process once it printed a line `readyLine` matches.
 * With `CHILD_LOG=<dir>` set, each child's output also goes to `<dir>/<pid>.log` (for example
 * V8's `--trace-gc` lines, with `DENO_V8_FLAGS=--trace-gc`).
 */
export function child(
  args: string[],
  readyLine: RegExp,
): Promise<{ proc: ChildProcess; line: string }> {
  const proc = spawn(process.execPath, ["run", "-A", ...args], {
    stdio: ["ignore", "pipe", "pipe"],
    env: { ...process.env, NO_COLOR: "1" },
  });
  endWithMe(proc); // not left running, busy, when the bench is killed alone
  return new Promise((resolve, reject) => {
    let out = "";
    let ready = false;
    const log = process.env.CHILD_LOG && `${process.env.CHILD_LOG}/${proc.pid}.log`;
    const onData = (d: Uint8Array) => {
      if (log) appendFileSync(log, d);
      if (ready) return; // what follows is not kept: a long run's output would only grow
      out += new TextDecoder().decode(d);
      const m = out.split("\n").find((l) => readyLine.test(l));
      if (m) {
        ready = true;
        resolve({ proc, line: m });
      }
    };
    proc.stdout!.on("data", onData);
    proc.stderr!.on("data", onData);
    proc.on("exit", (code) => reject(new Error(`child exited ${code}:\n${out}`)));
  });
}

/** The median of `xs` (the mean of the middle two when their number is even). */
export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return (s[Math.floor((s.length - 1) / 2)] + s[Math.ceil((s.length - 1) / 2)]) / 2;
}
