// The configuration keys minimesh reads, so that a misspelt one in application.properties,
// application.yml or a -D flag is named with the key it was likely meant to be (the rest of a
// file is the application's own: never warned about). tests/config_test.ts checks that every
// key the library reads by name is here.

/** Every key the library reads. */
export const KNOWN_KEYS: ReadonlySet<string> = new Set([
  "api.tokens",
  "app.partitions.per.topic",
  "app.topic.prefix",
  "application.feature.route.substitution",
  "application.name",
  "application.personality",
  "application.version",
  "block.max.pending.bytes",
  "block.max.pending.sets",
  "bootstrap.servers",
  "closed.user.group",
  "cloud.client.properties",
  "cloud.connector",
  "drain.grace.period",
  "event.api.max.bytes",
  "event.decode.max.bytes",
  "event.decode.max.depth",
  "info.app.description",
  "info.app.version",
  "kafka.client",
  "kafka.replication.factor",
  "kafka.silence.ms",
  "kafka.topics",
  "log.format",
  "log.level",
  "mandatory.health.dependencies",
  "max.closed.user.groups",
  "max.virtual.topics",
  "mesh.clock.skew",
  "mesh.identity.dir",
  "mesh.identity.secret",
  "mesh.tokens",
  "monitor.alive.interval",
  "monitor.bootstrap.wait",
  "monitor.topic",
  "optional.health.dependencies",
  "presence.handover.grace",
  "presence.handshake.timeout",
  "presence.hung.timeout",
  "presence.keepalive.publish.interval",
  "presence.max.connections",
  "presence.max.connections.per.address",
  "presence.max.connections.per.token",
  "presence.max.frames.per.second",
  "presence.max.pending",
  "presence.max.pending.per.address",
  "presence.reconnect.grace",
  "presence.tls.ca",
  "presence.topics.ahead",
  "presence.url",
  "protect.info.endpoints",
  "request.retry.routes",
  "route.queue.limit",
  "route.substitution",
  "serializer.null.transport",
  "server.host",
  "server.keep.alive.timeout",
  "server.max.body.bytes",
  "server.max.body.bytes.total",
  "server.max.connections",
  "server.max.connections.per.address",
  "server.port",
  "server.tls.cert",
  "server.tls.key",
  "show.application.properties",
  "show.env.variables",
  "spring.application.name",
  "stack.trace.transport.size",
  "websocket.idle.timeout",
  "yaml.multicast",
]);

/** The edit distance (Levenshtein) of `a` and `b`, or `max + 1` once it is over `max`. */
function distance(a: string, b: string, max: number): number {
  if (Math.abs(a.length - b.length) > max) return max + 1;
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const row = [i];
    let best = i;
    for (let j = 1; j <= b.length; j++) {
      row[j] = Math.min(prev[j] + 1, row[j - 1] + 1, prev[j - 1] + (a[i - 1] === b[j - 1] ? 0 : 1));
      best = Math.min(best, row[j]);
    }
    if (best > max) return max + 1;
    prev = row;
  }
  return prev[b.length];
}

/**
 * The known key that `key` is likely a misspelling of (at most two edits away, one for keys of
 * under 10 characters), or undefined for a known key or one of the application's own.
 */
export function misspeltKey(key: string): string | undefined {
  if (KNOWN_KEYS.has(key)) return undefined;
  const max = key.length < 10 ? 1 : 2;
  let best: string | undefined, bestDistance = max + 1;
  for (const known of KNOWN_KEYS) {
    const d = distance(key, known, max);
    if (d < bestDistance) [best, bestDistance] = [known, d];
  }
  return best;
}
