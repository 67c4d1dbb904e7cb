// A presence monitor (presence/main.ts, same arguments) that also says, every 10 s on stderr,
// how long its event loop stood still at most and how long its longest console write took:
// bench/fleet_bench.ts runs its monitors through this under FLEET_DEBUG. A loop that stands
// still while its writes are quick waited on something else; a slow write means whoever reads
// the monitor's output fell behind (a full pipe blocks the writer).
let worstHold = 0, worstWrite = 0, last = performance.now();
setInterval(() => {
  const now = performance.now();
  worstHold = Math.max(worstHold, now - last - 100);
  last = now;
}, 100);
for (const name of ["log", "info", "warn", "error", "debug"] as const) {
  const write = console[name].bind(console);
  console[name] = (...args: unknown[]) => {
    const t = performance.now();
    write(...args);
    worstWrite = Math.max(worstWrite, performance.now() - t);
  };
}
setInterval(() => {
  const at = new Date().toISOString();
  Deno.stderr.writeSync(
    new TextEncoder().encode(
      `${at} monitor: event loop held up to ${Math.round(worstHold)} ms, ` +
        `longest console write ${Math.round(worstWrite)} ms\n`,
    ),
  );
  worstHold = worstWrite = 0;
}, 10_000);

await import("../presence/main.ts");
