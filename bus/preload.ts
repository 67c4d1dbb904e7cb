/**
 * Registration by decorator, as the Java original's `@PreLoad`: a class with a `handleEvent`
 * method, decorated with its route(s) and instance count, is registered by
 * {@link registerPreloaded} (the Java original scans for them at start-up; here the modules that
 * declare them are imported first). Standard (TC39) decorators: no compiler flag.
 *
 * @example
 * ```ts
 * import assert from "node:assert";
 * import { Platform, PostOffice, preload, registerPreloaded } from "@minimesh/core";
 * import type { Composable } from "@minimesh/core";
 *
 * @preload({ route: "greeting.hello", instances: 5, isPrivate: false })
 * class Greeter implements Composable<string, string> {
 *   handleEvent(_headers: Record<string, string>, name: string) {
 *     return `hello ${name}`;
 *   }
 * }
 *
 * const platform = new Platform({ dir: "/nonexistent", args: [], env: {} });
 * registerPreloaded(platform);
 * const reply = await new PostOffice({}, platform).request({ to: "greeting.hello", body: "ann" }, 1000);
 * assert.equal(reply.body, "hello ann");
 * assert(Greeter.name === "Greeter" && !platform.isPrivate("greeting.hello"));
 * ```
 *
 * @module
 */
import type { EventEnvelope } from "./envelope.ts";
import type { Platform } from "./platform.ts";
import type { LambdaFunction } from "./types.ts";

/** A class-based function: what {@link preload} decorates. */
export interface Composable<I = unknown, O = unknown> {
  /** Handles one event, as a {@link LambdaFunction} does. */
  handleEvent(
    headers: Record<string, string>,
    body: I,
    instance: number,
    event: EventEnvelope<I>,
  ): O | Promise<O>;
}

/** What `@preload` says of a function (the Java original's `@PreLoad` attributes). */
export interface PreloadOptions {
  /** Its route, or several separated by commas (`"a.b, c.d"`). */
  route: string;
  /** How many events it may run at once (default 1). */
  instances?: number;
  /**
   * A configuration key (or `${ENV_VAR}`-style property) whose value, when it is a whole
   * number, overrides `instances`: the count then varies per deployment.
   */
  envInstances?: string;
  /** Private by default, as in the Java original: set false to advertise it to the mesh. */
  isPrivate?: boolean;
  /** An interceptor (the Java original's `@EventInterceptor`): see `RegisterOptions`. */
  interceptor?: boolean;
}

/** A class that {@link preload} accepts: constructed without arguments, with `handleEvent`. */
export type ComposableClass = new () => Composable<never, unknown>;

const PRELOADED: { cls: ComposableClass; options: PreloadOptions }[] = [];

/**
 * Marks a class as a function to register under `options.route` (see the module's example).
 *
 * @throws {TypeError} When the class has no `handleEvent` method.
 */
export function preload(
  options: PreloadOptions,
): (cls: ComposableClass, context: ClassDecoratorContext) => void {
  return (cls, context) => {
    if (typeof cls.prototype?.handleEvent !== "function") {
      throw new TypeError(`@preload: ${String(context.name)} needs a handleEvent method`);
    }
    PRELOADED.push({ cls, options });
  };
}

/**
 * Registers every class decorated with {@link preload} so far (each once per call), with its
 * instance count (`envInstances` read from the platform's configuration).
 *
 * @returns The routes registered.
 * @throws {InvalidRouteError} For a malformed route.
 */
export function registerPreloaded(platform: Platform): string[] {
  const registered: string[] = [];
  for (const { cls, options } of PRELOADED) {
    const fn = new cls();
    let instances = options.instances ?? 1;
    if (options.envInstances) {
      const configured = platform.config.getString(options.envInstances) ?? "";
      if (/^\d+$/.test(configured)) instances = Number(configured);
    }
    instances = Math.max(1, instances);
    for (const route of options.route.split(",").map((r) => r.trim()).filter(Boolean)) {
      // The body's type is the class's to declare; the bus hands it what the event carries.
      const handler: LambdaFunction = (h, b, i, e) =>
        (fn as unknown as Composable).handleEvent(h, b, i, e);
      const how = { instances, interceptor: options.interceptor };
      if (options.isPrivate === false) platform.register(route, handler, how);
      else platform.registerPrivate(route, handler, how);
      registered.push(route);
    }
  }
  return registered;
}
