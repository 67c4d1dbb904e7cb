// Network faults on this host's loopback for the tests: packets to and from one local port are
// dropped (nftables), which is what a broker whose host froze or whose network fell silent looks
// like: no refused connection, no reset, nothing. Needs root and `nft`; `netFaultsUnavailable`
// says why not otherwise (the tests that need it are skipped with that reason). Only ports of
// 127.0.0.1 that the test itself started are ever targeted.
import { spawnSync } from "node:child_process";
import process from "node:process";

const TABLE = `minimesh_test_${process.pid}`;

function nft(...args: string[]): { ok: boolean; out: string } {
  const r = spawnSync("nft", args, { encoding: "utf8" });
  return { ok: r.status === 0, out: `${r.stderr ?? ""}${r.error?.message ?? ""}`.trim() };
}

/** Why packet drops cannot be made here, or undefined when they can. */
export function netFaultsUnavailable(): string | undefined {
  if (process.getuid?.() !== 0) return "dropping packets needs root (nftables)";
  const probe = nft("list", "tables");
  return probe.ok ? undefined : `nft does not work here: ${probe.out}`;
}

/**
 * Drops every TCP packet to or from 127.0.0.1:`port` until the returned function is called
 * (idempotent; `healAll` removes every drop this process made, for an `after` hook).
 */
export function silence(port: number): () => void {
  const chain = `port_${port}`;
  const drop = (side: "daddr" | "saddr", which: "dport" | "sport") => {
    const match = ["ip", side, "127.0.0.1", "tcp", which, String(port)];
    return ["add", "rule", "inet", TABLE, chain, ...match, "drop"];
  };
  const steps = [
    ["add", "table", "inet", TABLE],
    [
      "add",
      "chain",
      "inet",
      TABLE,
      chain,
      "{ type filter hook output priority 0; policy accept; }",
    ],
    drop("daddr", "dport"),
    drop("saddr", "sport"),
  ];
  for (const step of steps) {
    const r = nft(...step);
    if (!r.ok) throw new Error(`nft ${step.join(" ")}: ${r.out}`);
  }
  let healed = false;
  return () => {
    if (healed) return;
    healed = true;
    nft("delete", "chain", "inet", TABLE, chain);
  };
}

/** Removes every packet drop this process made. */
export function healAll(): void {
  nft("delete", "table", "inet", TABLE);
}
