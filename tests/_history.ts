// The checker of the multi-host fault suite, in Jepsen's spirit: the history lines that
// tests/fixtures/bed_app.ts prints (`<ms> <WHAT> <id> ...`), from callers and workers alike, are
// checked for what must never happen (an acknowledged event lost or handled twice, a request
// executed twice, a reply to the wrong caller, one lease held by two) and for what a fault may
// cost (failed requests, time to recover). A request executed twice where one execution was a
// retry the caller asked for is counted apart: that is the retry option's documented semantics. Pure: it reads lines, so that it can be tested on
// generated histories.

/** One process's history: its name and its log lines. */
export interface History {
  name: string;
  lines: string[];
}

/** What a window of the history adds up to. */
export interface Report {
  /** Requests sent in the window, and how they ended. */
  requests: number;
  ok: number;
  /** Failed requests by status. */
  failed: Record<string, number>;
  /** Each failed request: its id, when it was sent, its status. */
  failures: { id: string; at: number; status: string }[];
  /** Requests still without an outcome. */
  pending: number;
  /** Replies that answered another request or another caller. */
  wrong: string[];
  /** Requests executed more than once, none of the times as a retry. */
  executedTwice: string[];
  /** Requests executed more than once, one of the times as a retry the caller asked for. */
  retriedTwice: string[];
  /** Events sent in the window, acknowledged by Kafka, refused. */
  events: number;
  acked: number;
  refused: number;
  /** Acknowledged events that no worker handled. */
  lost: string[];
  /** Events handled more than once. */
  handledTwice: string[];
  /** Virtual topics that two processes held at once: `topic a b from..to`. */
  leasesHeldTwice: string[];
  /** The first time (ms) from which every request of the window sent later succeeded. */
  servedFrom?: number;
}

interface Line {
  at: number;
  what: string;
  args: string[];
  proc: string;
}

function parse(h: History): Line[] {
  const out: Line[] = [];
  for (const line of h.lines) {
    const m = /^(\d{13}) ([A-Z]+)(?: (.*))?$/.exec(line);
    if (m) out.push({ at: Number(m[1]), what: m[2], args: (m[3] ?? "").split(" "), proc: h.name });
  }
  return out;
}

/**
 * Checks what was sent in [from, to) (ms). Executions and arrivals are counted over the whole
 * history, so that a late one still counts.
 */
export function check(histories: History[], from = 0, to = Infinity): Report {
  const lines = histories.flatMap(parse).sort((a, b) => a.at - b.at);
  const sentAt = new Map<string, number>();
  const outcome = new Map<string, string>();
  const eventSent = new Map<string, number>();
  const eventOutcome = new Map<string, string>();
  const executed = new Map<string, number>();
  const retried = new Set<string>();
  const handled = new Map<string, number>();
  const wrong: string[] = [];
  for (const l of lines) {
    const id = l.args[0];
    switch (l.what) {
      case "REQ":
        if (l.at >= from && l.at < to) sentAt.set(id, l.at);
        break;
      case "OK":
      case "FAIL":
        if (sentAt.has(id)) outcome.set(id, l.what === "OK" ? "ok" : l.args[1]);
        break;
      case "WRONG":
        if (sentAt.has(id)) {
          outcome.set(id, "wrong");
          wrong.push(`${id} ${l.args.slice(1).join(" ")}`);
        }
        break;
      case "SENT":
        if (l.at >= from && l.at < to) eventSent.set(id, l.at);
        break;
      case "ACK":
      case "NACK":
        if (eventSent.has(id)) eventOutcome.set(id, l.what);
        break;
      case "EXEC":
        executed.set(id, (executed.get(id) ?? 0) + 1);
        if (l.args[2] === "retry") retried.add(id);
        break;
      case "GOT":
        handled.set(id, (handled.get(id) ?? 0) + 1);
        break;
    }
  }
  const failed: Record<string, number> = {};
  const failures: Report["failures"] = [];
  let ok = 0, pending = 0;
  for (const [id, at] of sentAt) {
    const o = outcome.get(id);
    if (o === undefined) pending++;
    else if (o === "ok") ok++;
    else if (o !== "wrong") {
      failed[o] = (failed[o] ?? 0) + 1;
      failures.push({ id, at, status: o });
    }
  }
  const acked = [...eventSent.keys()].filter((id) => eventOutcome.get(id) === "ACK");
  const twice = [...sentAt.keys()].filter((id) => (executed.get(id) ?? 0) > 1);
  return {
    requests: sentAt.size,
    ok,
    failed,
    failures,
    pending,
    wrong,
    executedTwice: twice.filter((id) => !retried.has(id)),
    retriedTwice: twice.filter((id) => retried.has(id)),
    events: eventSent.size,
    acked: acked.length,
    refused: [...eventOutcome.values()].filter((o) => o === "NACK").length,
    lost: acked.filter((id) => !handled.has(id)),
    handledTwice: [...eventSent.keys()].filter((id) => (handled.get(id) ?? 0) > 1),
    leasesHeldTwice: leasesHeldTwice(lines, from, to),
    servedFrom: servedFrom(sentAt, outcome),
  };
}

/** From when on every request sent succeeded (undefined: the last one failed). */
function servedFrom(sentAt: Map<string, number>, outcome: Map<string, string>): number | undefined {
  const sent = [...sentAt].sort((a, b) => a[1] - b[1]);
  let from: number | undefined;
  for (const [id, at] of sent) {
    const o = outcome.get(id);
    if (o === undefined) continue; // still on its way at the end
    if (o !== "ok") from = undefined;
    else from ??= at;
  }
  return from;
}

/** Overlaps in [from, to) of two processes' leases of one virtual topic (TOPIC lines). */
function leasesHeldTwice(lines: Line[], from: number, to: number): string[] {
  // Per process, its leases as intervals.
  const held: { topic: string; proc: string; start: number; end: number }[] = [];
  const current = new Map<string, { topic: string; start: number }>();
  for (const l of lines) {
    if (l.what !== "TOPIC" && l.what !== "JOINED") continue;
    const topic = l.what === "TOPIC" ? l.args[0] : l.args[1];
    const was = current.get(l.proc);
    if (was) held.push({ ...was, proc: l.proc, end: l.at });
    if (topic) current.set(l.proc, { topic, start: l.at });
    else current.delete(l.proc);
  }
  for (const [proc, was] of current) held.push({ ...was, proc, end: Infinity });
  const found: string[] = [];
  for (let i = 0; i < held.length; i++) {
    for (let j = i + 1; j < held.length; j++) {
      const a = held[i], b = held[j];
      if (a.topic !== b.topic || a.proc === b.proc) continue;
      const start = Math.max(a.start, b.start, from), end = Math.min(a.end, b.end, to);
      if (start < end) found.push(`${a.topic} ${a.proc} ${b.proc} ${start}..${end}`);
    }
  }
  return found;
}
