// A multi-host test bed on this machine: each host a network namespace with an address of its
// own on a private subnet, all joined by one bridge (whose address in this namespace lets the test
// process reach every host), and faults of the network between them: a host cut off, a partition
// (both ways or one way), a slow and lossy link, a flapping link. Needs root and `ip`, `nft`, `ss`;
// `bedUnavailable` says why not otherwise. Only the bed's own addresses and interfaces are ever
// touched, and `destroy` removes all of it (a crashed run's leftovers with the same names too).
import { spawnSync } from "node:child_process";
import { connect, createServer } from "node:net";
import type { AddressInfo, Server, Socket } from "node:net";
import process from "node:process";

/** One host of the bed. */
export interface BedHost {
  /** Its name in the test (`b1`, `m1`, `a1`...). */
  name: string;
  /** Its network namespace. */
  netns: string;
  /** Its address on the bed's subnet. */
  addr: string;
  /** Its link's end on the bridge (in this namespace): down is the host cut off. */
  veth: string;
}

function run(args: string[], netns?: string): { ok: boolean; out: string } {
  const [cmd, ...rest] = netns ? ["ip", "netns", "exec", netns, ...args] : args;
  const r = spawnSync(cmd, rest, { encoding: "utf8" });
  return { ok: r.status === 0, out: `${r.stderr ?? ""}${r.error?.message ?? ""}`.trim() };
}

/** Adds an nftables rule on `host`; returns what deletes it. */
function rule(host: BedHost, table: string, chain: string, match: string[]): () => void {
  const r = spawnSync("ip", [
    "netns",
    "exec",
    host.netns,
    "nft",
    "--echo",
    "--handle",
    "add",
    "rule",
    ...table.split(" "),
    chain,
    ...match,
  ], { encoding: "utf8" });
  const handle = /# handle (\d+)/.exec(r.stdout ?? "")?.[1];
  if (r.status !== 0 || !handle) throw new Error(`nft rule on ${host.name}: ${r.stderr}`);
  return () =>
    void run(["nft", "delete", "rule", ...table.split(" "), chain, "handle", handle], host.netns);
}

function must(args: string[], netns?: string): void {
  const r = run(args, netns);
  if (!r.ok) throw new Error(`${netns ? `[${netns}] ` : ""}${args.join(" ")}: ${r.out}`);
}

/** Why the bed cannot be made here, or undefined when it can. */
export function bedUnavailable(): string | undefined {
  if (process.getuid?.() !== 0) return "network namespaces need root";
  for (const tool of [["ip", "netns", "list"], ["nft", "--version"], ["ss", "-V"]]) {
    const r = run(tool);
    if (!r.ok) return `${tool[0]} does not work here: ${r.out}`;
  }
  return undefined;
}

/** A set of hosts on one bridge, and the faults between them. */
export class Bed {
  readonly hosts: BedHost[];
  /** The bridge's address: the test process's own on the bed. */
  readonly gateway: string;
  readonly #bridge: string;
  readonly #heals = new Set<() => void>();

  private constructor(hosts: BedHost[], bridge: string, gateway: string) {
    this.hosts = hosts;
    this.#bridge = bridge;
    this.gateway = gateway;
  }

  /**
   * Makes one host per name (at most 200). The subnet, 10.231.N.0/24, and every name derive
   * from this process's id, so that two test processes never share them.
   */
  static create(names: string[]): Bed {
    if (names.length > 200) throw new RangeError("a bed has at most 200 hosts");
    const id = process.pid % 100_000;
    const net = `10.231.${(process.pid % 250) + 1}`;
    const bridge = `mmb${id}`;
    const hosts = names.map((name, i) => ({
      name,
      netns: `mm${id}-${name}`,
      addr: `${net}.${i + 10}`,
      veth: `mm${id}h${i}`,
    }));
    const bed = new Bed(hosts, bridge, `${net}.1`);
    bed.destroy(); // a crashed run's leftovers, if its pid was ours
    try {
      must(["ip", "link", "add", bridge, "type", "bridge"]);
      must(["ip", "addr", "add", `${bed.gateway}/24`, "dev", bridge]);
      must(["ip", "link", "set", bridge, "up"]);
      for (const h of hosts) {
        must(["ip", "netns", "add", h.netns]);
        must([
          "ip",
          "link",
          "add",
          h.veth,
          "type",
          "veth",
          "peer",
          "name",
          "eth0",
          "netns",
          h.netns,
        ]);
        must(["ip", "link", "set", h.veth, "master", bridge, "up"]);
        must(["ip", "addr", "add", `${h.addr}/24`, "dev", "eth0"], h.netns);
        must(["ip", "link", "set", "eth0", "up"], h.netns);
        must(["ip", "link", "set", "lo", "up"], h.netns);
        must(["nft", "add", "table", "inet", "bed"], h.netns);
        for (const hook of ["input", "output"]) {
          must([
            "nft",
            "add",
            "chain",
            "inet",
            "bed",
            hook,
            `{ type filter hook ${hook} priority 0; policy accept; }`,
          ], h.netns);
        }
      }
    } catch (e) {
      bed.destroy();
      throw e;
    }
    return bed;
  }

  /** The host named `name`. */
  host(name: string): BedHost {
    const h = this.hosts.find((x) => x.name === name);
    if (!h) throw new Error(`no host ${name} in the bed`);
    return h;
  }

  /** The command line that runs `command` on `host`: for `spawn`. */
  on(host: BedHost, command: string, args: string[]): [string, string[]] {
    return ["ip", ["netns", "exec", host.netns, command, ...args]];
  }

  #healer(heal: () => void): () => void {
    let done = false;
    const once = () => {
      if (done) return;
      done = true;
      this.#heals.delete(once);
      heal();
    };
    this.#heals.add(once);
    return once;
  }

  /** Cuts `host` off (its link down: no packet in or out) until the returned function runs. */
  cut(host: BedHost): () => void {
    must(["ip", "link", "set", host.veth, "down"]);
    return this.#healer(() => run(["ip", "link", "set", host.veth, "up"]));
  }

  /**
   * Drops every packet between the hosts of `a` and those of `b` until the returned function
   * runs. `oneWay`: only what `a` sends to `b` is dropped (b's packets still reach a).
   */
  partition(a: BedHost[], b: BedHost[], options: { oneWay?: boolean } = {}): () => void {
    const set = `{ ${b.map((h) => h.addr).join(", ")} }`;
    const removals: (() => void)[] = [];
    for (const h of a) {
      removals.push(rule(h, "inet bed", "output", ["ip", "daddr", set, "drop"]));
      if (!options.oneWay) {
        removals.push(rule(h, "inet bed", "input", ["ip", "saddr", set, "drop"]));
      }
    }
    return this.#healer(() => removals.forEach((remove) => remove()));
  }

  /**
   * Makes the link between `host` and the TCP services `to` slow and lossy until the returned
   * function runs: `lossPercent` of the packets between them dropped each way (nftables), and
   * each round trip `delayMs` longer. This kernel has no netem, so the delay comes from a relay
   * in the test process: `host`'s connections to each service are redirected to it (DNAT) and
   * it forwards every chunk `delayMs / 2` later each way. Connections open before are cut
   * (`ss -K`) so that they reconnect through it; the heal cuts the relayed ones.
   */
  async slow(
    host: BedHost,
    to: { addr: string; port: number }[],
    delayMs: number,
    lossPercent: number,
  ): Promise<() => void> {
    const relays: Server[] = [];
    const sockets = new Set<Socket>();
    const removals: (() => void)[] = [];
    const addrs = `{ ${[...new Set(to.map((t) => t.addr))].join(", ")} }`;
    const lossy = lossPercent >= 100
      ? ["drop"]
      : ["numgen", "random", "mod", "100", "<", String(Math.max(0, lossPercent)), "drop"];
    const nat: [string, string[]][] = [];
    for (const t of to) {
      const relay = createServer((inbound) => {
        const outbound = connect({ host: t.addr, port: t.port });
        for (const [from, into] of [[inbound, outbound], [outbound, inbound]]) {
          sockets.add(from);
          from.on("data", (chunk) => setTimeout(() => into.write(chunk), delayMs / 2));
          from.on("end", () => setTimeout(() => into.end(), delayMs / 2));
          from.on("error", () => into.destroy());
          // After what is still on its way (timers of one delay fire in order).
          from.on("close", () => {
            sockets.delete(from);
            setTimeout(() => into.destroy(), delayMs / 2);
          });
        }
      });
      await new Promise<void>((r) => relay.listen(0, this.gateway, r));
      relays.push(relay);
      const port = (relay.address() as AddressInfo).port;
      nat.push([t.addr, ["tcp", "dport", String(t.port), "dnat", "to", `${this.gateway}:${port}`]]);
    }
    run(["nft", "add", "table", "ip", "bednat"], host.netns);
    run([
      "nft",
      "add",
      "chain",
      "ip",
      "bednat",
      "output",
      "{ type nat hook output priority -100; }",
    ], host.netns);
    for (const [addr, action] of nat) {
      removals.push(rule(host, "ip bednat", "output", ["ip", "daddr", addr, ...action]));
    }
    // Relayed packets leave for the relay's port on this host's gateway (the DNAT comes first).
    const relayPorts = `{ ${relays.map((r) => (r.address() as AddressInfo).port).join(", ")} }`;
    const relayed = ["ip", "daddr", this.gateway, "tcp", "dport", relayPorts];
    removals.push(rule(host, "inet bed", "output", ["ip", "daddr", addrs, ...lossy]));
    removals.push(rule(host, "inet bed", "input", ["ip", "saddr", addrs, ...lossy]));
    removals.push(rule(host, "inet bed", "output", [...relayed, ...lossy]));
    removals.push(rule(host, "inet bed", "input", [
      ...["ip", "saddr", this.gateway, "tcp", "sport", relayPorts],
      ...lossy,
    ]));
    for (const t of to) {
      run(["ss", "-K", "dst", t.addr, "dport", "=", String(t.port)], host.netns);
    }
    return this.#healer(() => {
      for (const remove of removals) remove();
      run(["ss", "-K", "dst", this.gateway], host.netns);
      for (const socket of sockets) socket.destroy();
      for (const relay of relays) relay.close();
    });
  }

  /**
   * Takes `host`'s link down for `downMs` and up for `upMs`, `times` times; resolves when it
   * is up again for good.
   */
  async flap(host: BedHost, downMs: number, upMs: number, times: number): Promise<void> {
    for (let i = 0; i < times; i++) {
      const heal = this.cut(host);
      await new Promise((r) => setTimeout(r, downMs));
      heal();
      await new Promise((r) => setTimeout(r, upMs));
    }
  }

  /** Ends every fault still in place. */
  healAll(): void {
    for (const heal of [...this.#heals]) heal();
  }

  /**
   * Removes the hosts and the bridge (the processes in a namespace keep running, cut off:
   * stop them first).
   */
  destroy(): void {
    this.#heals.clear();
    for (const h of this.hosts) {
      run(["ip", "link", "del", h.veth]);
      run(["ip", "netns", "del", h.netns]);
    }
    run(["ip", "link", "del", this.#bridge]);
  }
}
