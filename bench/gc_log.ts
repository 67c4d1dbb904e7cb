/**
 * Sums V8's `--trace-gc` lines per process: how many scavenges and mark-compacts, their main-thread
 * pauses, the incremental marking steps before the mark-compacts, and the old generation's garbage
 * (what each mark-compact freed: objects promoted out of the young generation that died there).
 * With a bench's children logged by `CHILD_LOG` (see `bench/_child.ts`), for example:
 *
 * ```sh
 * mkdir -p /tmp/gc && CHILD_LOG=/tmp/gc DENO_V8_FLAGS=--trace-gc \
 *   deno run -A bench/sharing_long.ts 4 8 50000
 * deno run -A bench/gc_log.ts /tmp/gc/*.log
 * ```
 *
 * @module
 */
import { readFileSync } from "node:fs";
import process from "node:process";

// "Scavenge 86.2 (114.0) -> 66.7 (117.0) MB, pooled: 0.0 MB, 11.87 / 0.00 ms (+ 12.8 ms in ..."
const LINE =
  /(Scavenge|Mark-Compact)\b.*? ([\d.]+) \([\d.]+\) -> ([\d.]+) \([\d.]+\) MB, pooled: [\d.]+ MB, ([\d.]+) \/ [\d.]+ ms(?: \(\+ ([\d.]+) ms)?/;

const files = process.argv.slice(2);
if (files.length === 0) {
  console.error("usage: deno run -A bench/gc_log.ts <trace-gc log>...");
  process.exit(2);
}
console.log(
  "| log | scavenges | their pauses (ms) | mark-compacts | their pauses + incremental (ms) | old garbage freed (MB) |",
);
console.log("| --- | ---: | ---: | ---: | ---: | ---: |");
for (const file of files) {
  let scavenges = 0, scavengeMs = 0, compacts = 0, compactMs = 0, incrementalMs = 0, freed = 0;
  for (const line of readFileSync(file, "utf8").split("\n")) {
    const m = LINE.exec(line);
    if (m === null) continue;
    if (m[1] === "Scavenge") {
      scavenges++;
      scavengeMs += Number(m[4]);
    } else {
      compacts++;
      compactMs += Number(m[4]);
      incrementalMs += Number(m[5] ?? 0);
      freed += Number(m[2]) - Number(m[3]);
    }
  }
  console.log(
    `| ${file} | ${scavenges} | ${scavengeMs.toFixed(0)} | ${compacts} | ` +
      `${compactMs.toFixed(0)} + ${incrementalMs.toFixed(0)} | ${freed.toFixed(0)} |`,
  );
}
