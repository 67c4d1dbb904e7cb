import { describe, it } from "node:test";
import assert from "node:assert/strict";
import {
  controlEnvelope,
  LeaseTable,
  MAX_DEPARTED,
  parseControl,
  snapshotParts,
  splitVirtualTopic,
  virtualTopics,
} from "../internal.ts";
import type { ConnectionInfo, ControlMessage, MonitorMessage } from "../internal.ts";
import { EventEnvelope } from "../mod.ts";

function claim(origin: string, session: string, topic: string, monitor: string): ControlMessage {
  return { type: "claim", origin, session, topic, monitor };
}

function info(origin: string, monitor: string, session: string): ConnectionInfo {
  return {
    origin,
    name: "app",
    version: "1",
    type: "APP",
    group: 1,
    monitor,
    session,
    created: "2026-01-01T00:00:00Z",
    updated: "2026-01-01T00:00:00Z",
    seq: 1,
  };
}

const TOPICS = virtualTopics("mx", 4, 8);

describe("virtual topics", () => {
  it("are numbered as the reference does and split at the last dash", () => {
    assert.deepEqual(TOPICS.slice(0, 5), [
      "mx.0001-000",
      "mx.0001-001",
      "mx.0001-002",
      "mx.0001-003",
      "mx.0002-000",
    ]);
    assert.equal(virtualTopics("multiplex", 32, 288).length, 288);
    assert.deepEqual(splitVirtualTopic("multiplex.0001-007"), ["multiplex.0001", 7]);
    assert.throws(() => virtualTopics("mx", 32, 10), /max.virtual.topics \(10\)/);
  });
});

describe("LeaseTable", () => {
  it("grants a topic to the first claim applied and rejects a simultaneous second one", () => {
    const t = new LeaseTable(TOPICS);
    t.apply({ type: "put", info: info("a", "m1", "s1") });
    t.apply({ type: "put", info: info("b", "m2", "s2") });
    // Both monitors saw mx.0001-000 free and claimed it at the same moment.
    const first = t.apply(claim("a", "s1", "mx.0001-000", "m1"));
    const second = t.apply(claim("b", "s2", "mx.0001-000", "m2"));
    assert.equal(first[0].kind, "granted");
    assert.deepEqual(second, [{
      kind: "rejected",
      origin: "b",
      session: "s2",
      topic: "mx.0001-000",
      monitor: "m2",
      why: "mx.0001-000 is taken",
    }]);
    assert.equal(t.nextFree(), "mx.0001-001");
    assert.equal(t.nextFree((topic) => topic !== "mx.0001-001"), "mx.0001-002");
    assert.deepEqual(t.leases(), [["mx.0001-000", "a"]]);
  });

  it("rejects claims for unknown sessions and unknown topics; repeats a granted one", () => {
    const t = new LeaseTable(TOPICS);
    assert.equal(
      t.apply(claim("x", "s", "mx.0001-000", "m"))[0]
        .kind,
      "rejected",
    );
    t.apply({ type: "put", info: info("a", "m1", "s1") });
    const bad = t.apply(claim("a", "s1", "nope-1", "m1"));
    assert.match((bad[0] as { why: string }).why, /not a virtual topic/);
    t.apply(claim("a", "s1", "mx.0001-002", "m1"));
    const again = t.apply(claim("a", "s1", "mx.0001-003", "m1"));
    assert.deepEqual(again[0], {
      kind: "granted",
      origin: "a",
      session: "s1",
      topic: "mx.0001-002",
      claimed: "mx.0001-003",
      monitor: "m1",
    });
  });

  it("releases on del of the same session only", () => {
    const t = new LeaseTable(TOPICS);
    t.apply({ type: "put", info: info("a", "m1", "s1") });
    t.apply(claim("a", "s1", "mx.0001-000", "m1"));
    assert.deepEqual(
      t.apply({ type: "del", origin: "a", session: "old", monitor: "m1", reason: "x" }),
      [],
    );
    const fx = t.apply({
      type: "del",
      origin: "a",
      session: "s1",
      monitor: "m1",
      reason: "closed",
    });
    assert.deepEqual(fx.map((f) => f.kind), ["left", "released"]);
    assert.equal(t.connections().length, 0);
    assert.equal(t.nextFree(), "mx.0001-000");
  });

  it("a reconnect through another monitor supersedes the old session and keeps the lease", () => {
    const t = new LeaseTable(TOPICS);
    t.apply({ type: "put", info: info("a", "m1", "s1") });
    t.apply(claim("a", "s1", "mx.0001-000", "m1"));
    const fx = t.apply({ type: "put", info: info("a", "m2", "s9") });
    // No leave: the instance goes on reading its partition and its peers notice nothing.
    assert.deepEqual(fx.map((f) => f.kind), ["superseded"]);
    assert.equal(t.connection("a")?.monitor, "m2");
    assert.equal(t.connection("a")?.topic, "mx.0001-000");
    // The new monitor's claim (of whatever topic it reserved) is granted the lease it holds.
    const granted = t.apply(claim("a", "s9", "mx.0001-001", "m2"));
    assert.deepEqual(granted, [{
      kind: "granted",
      origin: "a",
      session: "s9",
      topic: "mx.0001-000",
      claimed: "mx.0001-001",
      monitor: "m2",
    }]);
    assert.equal(t.nextFree(), "mx.0001-001");
    // The old monitor's del of its closed session changes nothing.
    assert.deepEqual(
      t.apply({ type: "del", origin: "a", session: "s1", monitor: "m1", reason: "closed" }),
      [],
    );
    assert.deepEqual(t.leases(), [["mx.0001-000", "a"]]);
  });

  it("releases everything a gone monitor held", () => {
    const t = new LeaseTable(TOPICS);
    t.apply({ type: "put", info: info("a", "m1", "s1") });
    t.apply({ type: "put", info: info("b", "m2", "s2") });
    t.apply(claim("a", "s1", "mx.0001-000", "m1"));
    t.apply(claim("b", "s2", "mx.0001-001", "m2"));
    const fx = t.apply({ type: "release_monitor", dead: "m1", monitor: "m2" });
    assert.deepEqual(fx.map((f) => f.kind), ["left", "released"]);
    assert.deepEqual(t.leases(), [["mx.0001-001", "b"]]);
  });

  it("takes a monitor's word for what it holds after messages may have been lost", () => {
    const t = new LeaseTable(TOPICS);
    t.apply({ type: "put", info: info("a", "m1", "s1") });
    t.apply({ type: "put", info: info("b", "m1", "s2") });
    t.apply({ type: "put", info: info("x", "m2", "s3") });
    t.apply(claim("a", "s1", "mx.0001-000", "m1"));
    t.apply(claim("b", "s2", "mx.0001-001", "m1"));
    t.apply(claim("x", "s3", "mx.0001-002", "m2"));
    // m1 lost b (its `del` never reached Kafka) and gained c (its put and claim were lost); c
    // says it holds a topic x holds here.
    const fx = t.apply({
      type: "held",
      monitor: "m1",
      connections: [
        { ...info("a", "m1", "s1"), topic: "mx.0001-000" },
        { ...info("c", "m1", "s4"), topic: "mx.0001-003" },
        { ...info("d", "m1", "s5"), topic: "mx.0001-002" },
      ],
    });
    assert.deepEqual(fx.map((f) => f.kind), ["left", "released", "conflict"]);
    assert.deepEqual(t.leases(), [
      ["mx.0001-000", "a"],
      ["mx.0001-002", "x"],
      ["mx.0001-003", "c"],
    ]);
    assert.equal(t.connection("d")?.topic, undefined, "a conflicting lease is not recorded");
    assert.equal(t.connection("b"), undefined);
    // Another monitor's connections are not touched, and saying it again changes nothing.
    assert.deepEqual(
      t.apply({
        type: "held",
        monitor: "m1",
        connections: t.connections().filter((c) => c.monitor === "m1"),
      }),
      [],
    );
    assert.equal(t.connection("x")?.topic, "mx.0001-002");
  });

  it("gives two tables applying the same messages the same state, whatever the interleaving", () => {
    // Random claims from three monitors, applied in one log order by two replicas.
    let seed = 7;
    const rand = (n: number) => (seed = (seed * 48271) % 2147483647) % n;
    const log: ControlMessage[] = [];
    for (let i = 0; i < 40; i++) {
      log.push({ type: "put", info: info(`o${i}`, `m${rand(3)}`, `s${i}`) });
    }
    for (let i = 0; i < 200; i++) {
      const o = rand(40);
      log.push(
        rand(5) === 0
          ? { type: "del", origin: `o${o}`, session: `s${o}`, monitor: "m0", reason: "r" }
          : claim(`o${o}`, `s${o}`, TOPICS[rand(8)], "m0"),
      );
    }
    const a = new LeaseTable(TOPICS), b = new LeaseTable(TOPICS);
    for (const m of log) a.apply(m);
    for (const m of log) b.apply(m);
    assert.deepEqual(a.leases(), b.leases());
    const owners = a.leases().map(([, o]) => o);
    assert.equal(new Set(owners).size, owners.length, "no origin holds two topics");
    // A snapshot reproduces the table.
    const c = new LeaseTable(TOPICS);
    c.load(a.snapshot());
    assert.deepEqual(c.leases(), a.leases());
  });
});

describe("owned origins", () => {
  const owned = (origin: string, monitor: string, session: string, verifier?: string) => ({
    ...info(origin, monitor, session),
    verifier,
  });
  const at = (iso: string, c: ConnectionInfo) => ({ ...c, created: iso, updated: iso });

  it("refuses another session of an owned origin without its verifier, on every replica", () => {
    const t = new LeaseTable(TOPICS);
    t.apply({ type: "put", info: owned("a", "m1", "s1", "v") });
    t.apply(claim("a", "s1", "mx.0001-000", "m1"));
    for (const verifier of [undefined, "w"]) {
      const thief = owned("a", "m2", `t-${verifier}`, verifier);
      assert.deepEqual(t.apply({ type: "put", info: thief }), [{ kind: "impostor", info: thief }]);
      assert.equal(t.apply(claim("a", thief.session, "mx.0001-001", "m2"))[0].kind, "rejected");
    }
    assert.equal(t.connection("a")?.session, "s1", "the owner keeps its session");
    assert.equal(t.ownerOf("a", 0), "v");
    // The owner itself moves to another monitor and keeps its lease.
    const moved = owned("a", "m2", "s2", "v");
    assert.equal(t.apply({ type: "put", info: moved })[0].kind, "superseded");
    assert.equal(t.connection("a")?.topic, "mx.0001-000");
  });

  it("holds a departed owned origin for its owner for IDENTITY_HOLD_MS, then frees it", () => {
    const t = new LeaseTable(TOPICS);
    const first = at("2026-01-01T00:00:00Z", owned("a", "m1", "s1", "v"));
    t.apply({ type: "put", info: first });
    t.apply({ type: "del", origin: "a", session: "s1", monitor: "m1", reason: "closed" });
    assert.equal(t.connection("a"), undefined);
    const soon = at("2026-01-01T00:00:30Z", owned("a", "m2", "x", "w"));
    assert.equal(t.apply({ type: "put", info: soon })[0].kind, "impostor");
    // A monitor started now learns the hold from a snapshot.
    const copy = new LeaseTable(TOPICS);
    copy.load(t.snapshot());
    assert.equal(copy.apply({ type: "put", info: soon })[0].kind, "impostor");
    // After the hold anyone may take it (a restarted instance with the same appId).
    const later = at("2026-01-01T00:01:01Z", owned("a", "m2", "y", "w"));
    assert.deepEqual(t.apply({ type: "put", info: later }), []);
    assert.equal(t.ownerOf("a", 0), "w");
  });

  it("lets the owner back at once, and leaves an origin first claimed without a verifier open", () => {
    const t = new LeaseTable(TOPICS);
    t.apply({ type: "put", info: owned("a", "m1", "s1", "v") });
    t.apply({ type: "del", origin: "a", session: "s1", monitor: "m1", reason: "closed" });
    assert.deepEqual(t.apply({ type: "put", info: owned("a", "m2", "s2", "v") }), []);
    // A Java instance presents no verifier: a later session with one does not take it over.
    t.apply({ type: "put", info: owned("j", "m1", "s1") });
    assert.equal(t.apply({ type: "put", info: owned("j", "m2", "s2", "x") })[0].kind, "superseded");
    assert.equal(t.ownerOf("j", 0), undefined);
  });

  it("keeps at most MAX_DEPARTED departed origins", () => {
    const t = new LeaseTable(TOPICS);
    for (let i = 0; i <= MAX_DEPARTED; i++) {
      t.apply({ type: "put", info: owned(`o${i}`, "m1", "s", "v") });
      t.apply({ type: "del", origin: `o${i}`, session: "s", monitor: "m1", reason: "r" });
    }
    assert.equal(t.snapshot().departed?.length, MAX_DEPARTED);
    assert.equal(t.ownerOf("o0", 0), undefined, "the oldest went first");
    assert.equal(t.ownerOf(`o${MAX_DEPARTED}`, 0), "v");
  });
});

describe("control messages", () => {
  it("round-trip through envelopes", () => {
    const msgs: MonitorMessage[] = [
      { type: "put", info: { ...info("a", "m1", "s1"), topic: "mx.0001-000", instance: "i" } },
      claim("a", "s1", "mx.0001-000", "m1"),
      { type: "del", origin: "a", session: "s1", monitor: "m1", reason: "closed" },
      { type: "release_monitor", dead: "m1", monitor: "m2" },
      { type: "alive", monitor: "m1", version: "1", started: "2026" },
      { type: "download", monitor: "m1" },
      {
        type: "held",
        monitor: "m1",
        connections: [{ ...info("a", "m1", "s1"), topic: "mx.0001-000" }],
      },
      {
        type: "snapshot",
        monitor: "m1",
        for: "m2",
        asOf: "42",
        table: {
          connections: [{ ...info("a", "m1", "s1"), verifier: "v" }],
          departed: [{ origin: "b", verifier: "w", at: 1 }],
        },
        part: 1,
        parts: 1,
      },
      {
        type: "snapshot",
        monitor: "m1",
        for: "m2",
        asOf: "42",
        table: { connections: [], departed: [{ origin: "c", verifier: "x", at: 2 }] },
        part: 2,
        parts: 3,
      },
    ];
    for (const m of msgs) {
      const bytes = controlEnvelope(m).toBytes();
      assert.ok(bytes.length < 1024 * 1024, `${m.type} under Kafka's 1 MiB`);
      const back = parseControl(EventEnvelope.fromBytes(bytes));
      assert.deepEqual(JSON.parse(JSON.stringify(back)), JSON.parse(JSON.stringify(m)), m.type);
    }
  });

  it("reject malformed ones with a clear reason", () => {
    const bad: [EventEnvelope, RegExp][] = [
      [new EventEnvelope({ headers: { type: "claim", origin: "a" } }), /header session is missing/],
      [new EventEnvelope({ headers: { type: "bogus" } }), /unknown control message type "bogus"/],
      [new EventEnvelope({ headers: { type: "put" }, body: "x" }), /body must be a map/],
      [
        new EventEnvelope({
          headers: { type: "snapshot", monitor: "m", for: "n", as_of: "1" },
          body: {},
        }),
        /connections list/,
      ],
    ];
    for (const [e, re] of bad) assert.throws(() => parseControl(e), re);
  });
});

describe("snapshots for a starting monitor", () => {
  it("go in parts under Kafka's 1 MiB however large the table, and join back whole", () => {
    const long = (c: string) => c.repeat(200); // as long as a session's strings may be
    const connections = Array.from({ length: 2000 }, (_, i) => ({
      ...info(`2026120${String(i).padStart(33, "0")}`, "m1", `s${i}`),
      name: long("n"),
      version: long("v").slice(0, 100),
      instance: long("i"),
      verifier: "f".repeat(64),
    }));
    const departed = Array.from({ length: MAX_DEPARTED }, (_, i) => ({
      origin: `d${i}`,
      verifier: "f".repeat(64),
      at: i,
    }));
    const parts = snapshotParts({ connections, departed });
    assert.ok(parts.length > 1);
    for (const [i, table] of parts.entries()) {
      const m: MonitorMessage = {
        type: "snapshot",
        monitor: "m1",
        for: "m2",
        asOf: "7",
        table,
        part: i + 1,
        parts: parts.length,
      };
      const bytes = controlEnvelope(m).toBytes();
      assert.ok(bytes.length < 1024 * 1024, `part ${i + 1}: ${bytes.length} bytes`);
      const back = parseControl(EventEnvelope.fromBytes(bytes));
      assert.deepEqual(JSON.parse(JSON.stringify(back)), JSON.parse(JSON.stringify(m)));
    }
    assert.deepEqual(parts.flatMap((p) => p.connections), connections);
    assert.deepEqual(parts.flatMap((p) => p.departed ?? []), departed);
  });
});

describe("a Java monitor's leases in the table", () => {
  it("follows its confirm_topic, moving an origin, and refuses a topic held by another", () => {
    const t = new LeaseTable(TOPICS);
    t.apply({ type: "put", info: info("j1", "java", "ws.1"), foreign: true });
    t.apply({ type: "put", info: info("ts", "mon", "s1") });
    t.apply(claim("ts", "s1", "mx.0001-000", "mon"));
    assert.deepEqual(
      t.apply({ type: "assign", origin: "j1", topic: "mx.0001-001", monitor: "java" }),
      [
        {
          kind: "granted",
          origin: "j1",
          session: "ws.1",
          topic: "mx.0001-001",
          claimed: "mx.0001-001",
          monitor: "java",
        },
      ],
    );
    assert.deepEqual(
      t.apply({ type: "assign", origin: "j1", topic: "mx.0001-001", monitor: "java" }),
      [],
    );
    // Java leased it another partition (it reconnected): the old one is free again.
    const moved = t.apply({ type: "assign", origin: "j1", topic: "mx.0001-002", monitor: "java" });
    assert.deepEqual(moved.map((e) => e.kind), ["released", "granted"]);
    assert.ok(t.isFree("mx.0001-001"));
    // A topic the table gives to another origin is not taken.
    const clash = t.apply({ type: "assign", origin: "j1", topic: "mx.0001-000", monitor: "java" });
    assert.deepEqual(clash.map((e) => e.kind), ["conflict"]);
    assert.deepEqual(t.leases(), [["mx.0001-000", "ts"], ["mx.0001-002", "j1"]]);
    // Unknown origins and topics that are not virtual ones change nothing.
    assert.deepEqual(
      t.apply({ type: "assign", origin: "nobody", topic: "mx.0001-003", monitor: "java" }),
      [],
    );
    assert.deepEqual(
      t.apply({ type: "assign", origin: "j1", topic: "other.0001-000", monitor: "java" }).map((e) =>
        e.kind
      ),
      ["conflict"],
    );
  });

  it("takes a Java monitor's record of an owned origin, keeping the owner's verifier", () => {
    const t = new LeaseTable(TOPICS);
    t.apply({ type: "put", info: { ...info("o", "mon", "s1"), verifier: "v" } });
    const fx = t.apply({ type: "put", info: info("o", "java", "ws.9"), foreign: true });
    assert.deepEqual(fx.map((e) => e.kind), ["superseded"]);
    assert.equal(t.connection("o")?.monitor, "java");
    assert.equal(t.connection("o")?.verifier, "v", "the owner stays the owner");
    // Without `foreign` the same record is an impostor's.
    const u = new LeaseTable(TOPICS);
    u.apply({ type: "put", info: { ...info("o", "mon", "s1"), verifier: "v" } });
    assert.deepEqual(u.apply({ type: "put", info: info("o", "mon2", "s2") }).map((e) => e.kind), [
      "impostor",
    ]);
  });
});
