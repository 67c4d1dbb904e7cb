// Many mesh members in one process, for bench/fleet_bench.ts: `-Dfleet.members=M` platforms,
// each a full member (its own connector, lease and routing table) named `<fleet.name>-<i>`,
// joining at once. Prints, with the time in ms:
//   JOINED <ms>            every member of this process has joined
//   COMPLETE <ms>          every member's table holds `-Dfleet.total` - 1 peers (once)
//   LEFT <origin> <ms>     a member heard that a peer left (each member, each peer)
// Stops every member gracefully on SIGTERM.
import process from "node:process";
import { Platform } from "../mod.ts";
import { connectToCloud } from "../connector/mod.ts";
import type { KafkaConnector } from "../connector/mod.ts";

const flag = (name: string) =>
  process.argv.find((a) => a.startsWith(`-D${name}=`))?.slice(name.length + 3);
const count = Number(flag("fleet.members") ?? 1);
const total = Number(flag("fleet.total") ?? count);
const name = flag("fleet.name") ?? "fleet";
const args = process.argv.slice(2).filter((a) => !a.startsWith("-Dfleet."));

const connectors: KafkaConnector[] = [];
for (let i = 0; i < count; i++) {
  const platform = new Platform({
    dir: "/nonexistent",
    env: {},
    args: [`-Dapplication.name=${name}-${i}`, ...args],
  });
  platform.register("fleet.echo", (_h, body) => body);
  const connector = connectToCloud(platform)!;
  connectors.push(connector);
  (async () => {
    for await (const e of connector.lifeCycle()) {
      if (e.type === "leave") console.log(`LEFT ${e.origin} ${Date.now()}`);
    }
  })();
}
let joined = 0;
for (const c of connectors) c.joined.then(() => joined++);
const joining = setInterval(() => console.error(`${name}: ${joined} of ${count} joined`), 10_000);
await Promise.all(connectors.map((c) => c.joined));
clearInterval(joining);
console.log(`JOINED ${Date.now()}`);
let ticks = 0;
const watch = setInterval(() => {
  const fewest = Math.min(...connectors.map((c) => c.table.peers().length));
  if (fewest >= total - 1) {
    console.log(`COMPLETE ${Date.now()}`);
    clearInterval(watch);
  } else if (++ticks % 50 === 0) {
    console.error(`${name}: the fewest peers a member knows: ${fewest}`);
  }
}, 100);

process.on("SIGTERM", () => {
  clearInterval(watch);
  Promise.all(connectors.map((c) => c.stop())).finally(() => process.exit(0));
});
