// The runtime's own cost of waking (`idle_bench.ts`): a process that does nothing but run an empty
// timer `hz` times a second. Prints READY, then idles until killed.
//
// `deno run -A bench/_empty_wakes.ts <hz>`
import process from "node:process";

const hz = Number(process.argv[2]);
if (!(hz > 0 && hz <= 1000)) {
  throw new RangeError(`hz must be in (0, 1000], got ${process.argv[2]}`);
}
setInterval(() => {}, 1000 / hz);
console.log("READY");
