// CPU time of processes, from /proc (Linux): what a side of a benchmark costs per request, beside
// how fast it went.
import { readFileSync } from "node:fs";
import process from "node:process";
import { devBroker, runningPid } from "../scripts/kafka_dev.ts";

/** CPU time (user + system, ms) process `pid` has used; /proc counts in ticks of 10 ms. */
export function cpuMs(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1].split(" ");
  return (Number(fields[11]) + Number(fields[12])) * 10;
}

/**
 * How often the main thread of process `pid` was put back to work after waiting: its voluntary
 * context switches (Linux), one for each wait for a timer or a socket that ended.
 */
export function wakes(pid: number): number {
  const status = readFileSync(`/proc/${pid}/task/${pid}/status`, "utf8");
  return Number(/^voluntary_ctxt_switches:\s+(\d+)/m.exec(status)?.[1] ?? NaN);
}

const BROKER = runningPid(devBroker());

/**
 * CPU time (ms) used so far by this process, by the peers `peerPids` together, and by the
 * development broker (`deno task kafka start`; NaN when it does not run here). Differences of
 * two readings tell what each side spent in between.
 */
export function cpuOfSides(...peerPids: number[]): [number, number, number] {
  const self = process.cpuUsage();
  const peers = peerPids.reduce((sum, pid) => sum + cpuMs(pid), 0);
  return [(self.user + self.system) / 1000, peers, BROKER ? cpuMs(BROKER) : NaN];
}
