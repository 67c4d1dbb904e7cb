// multicast.yaml: each source route relays a copy of every event to its targets (the Java
// original's multicast configuration).
import { ConfigError } from "./errors.ts";
import { logger } from "./_log.ts";
import { validateRoute } from "./route.ts";
import { readYaml } from "./route_config.ts";
import type { AppConfig } from "./config.ts";
import type { EventEnvelope } from "./envelope.ts";
import type { LambdaFunction } from "./types.ts";

/** What the relays need of their platform (which calls this; so it is not imported). */
export interface MulticastHost {
  readonly config: AppConfig;
  registerPrivate(route: string, fn: LambdaFunction): void;
  deliver(event: EventEnvelope): void | Promise<void>;
}

const log = logger("platform");

/**
 * Registers a private relay on `platform` for each source in its `multicast.yaml`.
 *
 * @throws {ConfigError} For a malformed file.
 */
export function loadMulticast(platform: MulticastHost): void {
  const doc = readYaml(platform.config, "yaml.multicast", "multicast.yaml");
  if (doc === undefined) return;
  const file = platform.config.getString("yaml.multicast") ?? "multicast.yaml";
  const entries = (doc as { multicast?: unknown } | null)?.multicast;
  if (!Array.isArray(entries)) {
    throw new ConfigError(`${file}: multicast`, entries, "a list of {source, targets}");
  }
  entries.forEach((entry, i) => {
    const source = entry?.source;
    const targets = entry?.targets;
    const where = `${file}: multicast[${i}]`;
    if (typeof source !== "string" || !Array.isArray(targets) || targets.length === 0) {
      throw new ConfigError(where, entry, "{source: route, targets: [route, ...]}");
    }
    for (const t of [source, ...targets]) {
      try {
        validateRoute(t);
      } catch (e) {
        throw new ConfigError(where, t, (e as Error).message);
      }
    }
    if (targets.includes(source)) throw new ConfigError(where, source, "a source not in targets");
    platform.registerPrivate(source, (_headers, _body, _instance, event) => {
      for (const target of targets as string[]) {
        const copy = event.copy();
        copy.to = target;
        copy.replyTo = undefined; // the relay itself answers a request; targets only listen
        try {
          platform.deliver(copy);
        } catch (e) {
          log.error("Multicast {source} -> {target} failed: {message}", {
            source,
            target,
            message: (e as Error).message,
          });
        }
      }
    });
    log.info("Multicast {source} -> {targets}", { source, targets: targets.join(", ") });
  });
}
