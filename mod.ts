/**
 * minimesh: an in-memory event bus for Deno and Node and, only when an application opts in
 * (`cloud.connector=kafka`), a minimalist service mesh over Kafka.
 *
 * Functions are registered under route names with N worker instances; a {@link PostOffice}
 * sends events, makes requests with a timeout, forks and joins, and broadcasts. Everything
 * travels as an {@link EventEnvelope}.
 *
 * This entry point is the dependency-light core: it never loads a Kafka client.
 *
 * @example
 * ```ts
 * import assert from "node:assert";
 * import { Platform, PostOffice } from "@minimesh/core";
 * const platform = new Platform({ dir: "/nonexistent", args: [], env: {} });
 * platform.register("hello.world", (headers, body, instance) => ({ body, instance }), 10);
 * const po = new PostOffice({}, platform);
 * const reply = await po.request({ to: "hello.world", body: "hi" }, 5000);
 * assert((reply.body as { body: string }).body === "hi");
 * ```
 *
 * @module
 */
export * from "./bus/mod.ts";
