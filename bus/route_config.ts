/**
 * Where an event goes besides its own route, as the Java original configures it: route
 * substitution (`application.feature.route.substitution=true` with `route.substitution=a.b:c.d,
 * ...` or the YAML file `yaml.route.substitution` listing `a.b -> c.d`), and Event-over-HTTP
 * targets (`yaml.event.over.http`: routes whose events go to another instance's `/api/event`).
 * Both are read once, when the platform is created; a bad entry stops it with a
 * {@link ConfigError} naming the entry.
 *
 * @module
 */
import { existsSync, readFileSync } from "node:fs";
import { isAbsolute, join } from "node:path";
import { parse as parseYaml } from "yaml";
import type { AppConfig } from "./config.ts";
import { ConfigError } from "./errors.ts";
import { validateRoute } from "./route.ts";

/**
 * The YAML document a config key names (relative paths from the config's folder), or undefined
 * when the key is not set and `fallback` (a file name there) does not exist either.
 *
 * @throws {ConfigError} When a file that was named is missing or is not YAML.
 */
export function readYaml(config: AppConfig, key: string, fallback?: string): unknown {
  const configured = config.getString(key);
  const name = configured ?? fallback;
  if (name === undefined) return undefined;
  const file = isAbsolute(name) ? name : join(config.dir, name);
  if (!existsSync(file)) {
    if (configured !== undefined) throw new ConfigError(key, file, "an existing file");
    return undefined;
  }
  try {
    return parseYaml(readFileSync(file, "utf8"));
  } catch (e) {
    throw new ConfigError(file, (e as Error).message.split("\n")[0], "valid YAML");
  }
}

function route(where: string, name: unknown): string {
  try {
    validateRoute(name as string);
  } catch (e) {
    throw new ConfigError(where, name, (e as Error).message);
  }
  return name as string;
}

/** Route substitutions, original → replacement; empty unless the feature is on. */
export function routeSubstitutions(config: AppConfig): Map<string, string> {
  const map = new Map<string, string>();
  if (!config.getBoolean("application.feature.route.substitution", false)) return map;
  const doc = readYaml(config, "yaml.route.substitution");
  let entries: [string, string, string][]; // where, original, replacement
  if (doc !== undefined) {
    const list = (doc as { route?: { substitution?: unknown } } | null)?.route?.substitution ??
      (doc as Record<string, unknown> | null)?.["route.substitution"];
    if (!Array.isArray(list)) {
      throw new ConfigError("yaml.route.substitution", list, "a route.substitution list");
    }
    entries = list.map((entry, i) => {
      const where = `route.substitution[${i}]`;
      const sep = typeof entry === "string" ? entry.indexOf("->") : -1;
      if (sep < 0) throw new ConfigError(where, entry, "original -> replacement");
      return [where, entry.slice(0, sep).trim(), entry.slice(sep + 2).trim()];
    });
  } else {
    entries = config.getList("route.substitution").map((entry) => {
      const colon = entry.indexOf(":");
      if (colon < 0) throw new ConfigError("route.substitution", entry, "original:replacement");
      return ["route.substitution", entry.slice(0, colon).trim(), entry.slice(colon + 1).trim()];
    });
  }
  for (const [where, original, replacement] of entries) {
    route(where, original);
    route(where, replacement);
    if (original === replacement) continue;
    // One step only, as in the Java original: a replacement is never substituted again.
    if (map.has(replacement) || [...map.values()].includes(original)) {
      throw new ConfigError(where, `${original} -> ${replacement}`, "no nested substitution");
    }
    map.set(original, replacement);
  }
  return map;
}

/** `to` after substitution: `a.b` or `a.b@origin` with `a.b` replaced when it is listed. */
export function substitute(map: ReadonlyMap<string, string>, to: string): string {
  const at = to.indexOf("@");
  const name = at < 0 ? to : to.slice(0, at);
  const replacement = map.get(name);
  return replacement === undefined ? to : replacement + (at < 0 ? "" : to.slice(at));
}

/** Where a route's events go over HTTP: another instance's `/api/event`, with headers. */
export interface HttpTarget {
  url: string;
  headers: Record<string, string>;
}

/** The Event-over-HTTP targets of `yaml.event.over.http`, by route; empty when not set. */
export function eventHttpTargets(config: AppConfig): Map<string, HttpTarget> {
  const map = new Map<string, HttpTarget>();
  const doc = readYaml(config, "yaml.event.over.http");
  if (doc === undefined) return map;
  const list = (doc as { event?: { http?: unknown } } | null)?.event?.http ??
    (doc as Record<string, unknown> | null)?.["event.http"];
  if (!Array.isArray(list)) {
    throw new ConfigError("yaml.event.over.http", list, "an event.http list of {route, target}");
  }
  list.forEach((entry, i) => {
    const where = `event.http[${i}]`;
    const { route: name, target, headers } = (entry ?? {}) as Record<string, unknown>;
    let url: URL;
    try {
      url = new URL(String(target));
    } catch {
      throw new ConfigError(`${where}.target`, target, "an http(s) URL");
    }
    if (url.protocol !== "http:" && url.protocol !== "https:") {
      throw new ConfigError(`${where}.target`, target, "an http(s) URL");
    }
    if (headers !== undefined && (headers === null || typeof headers !== "object")) {
      throw new ConfigError(`${where}.headers`, headers, "a map of header names to values");
    }
    map.set(route(`${where}.route`, name), {
      url: url.href,
      headers: Object.fromEntries(
        Object.entries((headers ?? {}) as Record<string, unknown>).map(([k, v]) => [k, String(v)]),
      ),
    });
  });
  return map;
}

/** Where events go besides their own routes, read once per platform. */
export interface RouteConfig {
  /** Original → replacement (empty unless `application.feature.route.substitution`). */
  substitutions: ReadonlyMap<string, string>;
  /** Route → where its events go over HTTP (`yaml.event.over.http`). */
  httpTargets: ReadonlyMap<string, HttpTarget>;
}

/**
 * Reads both from `config`.
 *
 * @throws {ConfigError} Naming the first bad entry.
 */
export function routeConfig(config: AppConfig): RouteConfig {
  return { substitutions: routeSubstitutions(config), httpTargets: eventHttpTargets(config) };
}
