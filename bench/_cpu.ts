// CPU time of processes, from /proc (Linux): what a side of a benchmark costs per request, beside
// how fast it went.
import { readFileSync } from "node:fs";
import { devBroker, runningPid } from "../scripts/kafka_dev.ts";

/** CPU time (user + system, ms) process `pid` has used; /proc counts in ticks of 10 ms. */
export function cpuMs(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1].split(" ");
  return (Number(fields[11]) + Number(fields[12])) * 10;
}

/** The pid of the development broker (`deno task kafka start`), if it runs here. */
export function devBrokerPid(): number | undefined {
  return runningPid(devBroker());
}
