/**
 * The event envelope: what every event, request and reply travels as. Its MsgPack wire format
 * (the Java original's COMPACT and STANDARD key sets) lives in two codecs beside it: the fast
 * binary one (`_envelope_binary.ts`) and the map-based one (`_envelope_fields.ts`).
 *
 * @module
 */
import { nextId } from "./_ids.ts";
import { bindEnvelope, decodeFast, encode, formatFast } from "./_envelope_binary.ts";
import {
  BY_KEY,
  checkField,
  decodeMap,
  FIELDS,
  headerValue,
  isEmpty,
  isStandard,
  toPlain,
} from "./_envelope_fields.ts";
import type { EnvelopeInit, WireFormat } from "./_envelope_fields.ts";
import { checkBudget, DEFAULT_BUDGET } from "./_budget.ts";
import type { DecodeBudget } from "./_budget.ts";

export { DEFAULT_BUDGET, headerValue, toPlain };
export type { DecodeBudget, EnvelopeInit, WireFormat };

/** How {@link EventEnvelope.fromBytes} reads a body. */
export interface DecodeOptions {
  /** Keep null values in the body's maps (default true); Java drops them unless told not to. */
  nulls?: boolean;
  /**
   * What decoding may cost (default {@link DEFAULT_BUDGET}): a message nested deeper, or whose
   * value would take more heap, is refused before it is decoded.
   */
  budget?: DecodeBudget;
}

/**
 * Removes null and undefined values from maps, at any depth; lists keep theirs, as the Java
 * original's MsgPack reader does. Changes `value` in place and returns it.
 *
 * @example
 * ```ts
 * import assert from "node:assert";
 * import { withoutNullsInMaps } from "@minimesh/core";
 * assert.deepEqual(withoutNullsInMaps({ a: null, b: [null, { c: null }] }), { b: [null, {}] });
 * ```
 */
export function withoutNullsInMaps<T>(value: T): T {
  if (Array.isArray(value)) {
    for (const item of value) {
      if (typeof item === "object" && item !== null) withoutNullsInMaps(item);
    }
  } else if (typeof value === "object" && value !== null && isPlainMap(value)) {
    const map = value as Record<string, unknown>;
    for (const k of Object.keys(map)) {
      const v = map[k];
      if (v === null || v === undefined) delete map[k];
      else if (typeof v === "object") withoutNullsInMaps(v);
    }
  }
  return value;
}

function isPlainMap(v: object): boolean {
  const proto = Object.getPrototypeOf(v);
  return proto === Object.prototype || proto === null;
}

let peekAnnotations: (e: EventEnvelope) => Record<string, unknown> | undefined;
/** The headers map of an envelope, without creating one (for the platform's hot path). */
export let peekHeaders: (e: EventEnvelope) => Record<string, string> | undefined;
/** The tags map of an envelope, without creating one (for the platform's hot path). */
export let peekTags: (e: EventEnvelope) => Record<string, string> | undefined;

/** Replaces (or, with undefined, drops) the tags map of an envelope. */
export let resetTags: (e: EventEnvelope, tags: Record<string, string> | undefined) => void;

/**
 * A header by name, whatever its case: the exact name first, then the first whose name differs
 * only in case (HTTP and Java code often write `Content-Type` where a map has `content-type`).
 * Functions get their headers as a plain map; this is the Java original's case-insensitive
 * `getHeader`.
 *
 * @example
 * ```ts
 * import assert from "node:assert";
 * import { headerOf } from "@minimesh/core";
 * assert.equal(headerOf({ "x-user": "ann" }, "X-User"), "ann");
 * assert.equal(headerOf({ a: "1" }, "constructor"), undefined);
 * ```
 */
export function headerOf(headers: Record<string, string>, name: string): string | undefined {
  if (Object.hasOwn(headers, name)) return headers[name];
  const lower = name.toLowerCase();
  for (const key of Object.keys(headers)) if (key.toLowerCase() === lower) return headers[key];
  return undefined;
}

/**
 * An event: route, sender, reply address, correlation and trace data, status, headers and body.
 * Headers are strings; the body is any MsgPack value (maps, lists, strings, numbers, booleans,
 * bytes, null).
 *
 * @example Build an event and round-trip it through the wire format
 * ```ts
 * import assert from "node:assert";
 * import { EventEnvelope } from "@minimesh/core";
 * const event = new EventEnvelope({ to: "hello.world", headers: { a: "b" }, body: { n: 1 } });
 * const copy = EventEnvelope.fromBytes(event.toBytes());
 * assert(copy.to === "hello.world" && copy.headers.a === "b");
 * ```
 */
export class EventEnvelope<B = unknown> {
  // Generated on first read: most in-memory replies are never asked for their id.
  #id: string | undefined;
  /** Target route, optionally `route@origin`. */
  to: string | undefined;
  /** Sender route. */
  from: string | undefined;
  /** Where a reply goes (`temporary.inbox@<origin>` for requests). */
  replyTo: string | undefined;
  /** Correlation id; for requests the engine swaps it for an inbox id and restores it. */
  correlationId: string | undefined;
  /** Trace id. */
  traceId: string | undefined;
  /** Trace path, such as `GET /api/x`. */
  tracePath: string | undefined;
  /** The sender's span id. */
  spanId: string | undefined;
  /** Status: 200 unless set; 400 or more marks an error reply. */
  status: number;
  // The three maps are created on first read: most in-memory events never use some of them.
  #headers: Record<string, string> | undefined;
  #tags: Record<string, string> | undefined;
  #annotations: Record<string, unknown> | undefined;
  /** The payload: any MsgPack value (typed by the request's or the function's generics). */
  body: B;
  /** A Java-serialised exception from a Java peer; kept opaque. */
  exception: Uint8Array | undefined;
  /** Stack trace text of an error reply. */
  stack: string | undefined;
  /** Advisory type name of the body. */
  type: string | undefined;
  /** How long the function took, in ms. */
  execTime: number | undefined;
  /** Request round trip seen by the caller, in ms. */
  roundTrip: number | undefined;

  /**
   * Creates an envelope.
   *
   * @param init Initial field values; `id` is generated when absent.
   */
  constructor(init?: EnvelopeInit<B>) {
    // The engine creates most envelopes blank; reading 18 absent fields from a shared
    // polymorphic site would cost more than the whole allocation.
    this.#id = undefined;
    this.to = undefined;
    this.from = undefined;
    this.replyTo = undefined;
    this.correlationId = undefined;
    this.traceId = undefined;
    this.tracePath = undefined;
    this.spanId = undefined;
    this.status = 200;
    this.#headers = undefined;
    this.#tags = undefined;
    this.#annotations = undefined;
    this.body = undefined as B;
    this.exception = undefined;
    this.stack = undefined;
    this.type = undefined;
    this.execTime = undefined;
    this.roundTrip = undefined;
    if (init !== undefined) this.#assign(init);
  }

  #assign(init: EnvelopeInit<B>): void {
    this.#id = init.id;
    this.to = init.to;
    this.from = init.from;
    this.replyTo = init.replyTo;
    this.correlationId = init.correlationId;
    this.traceId = init.traceId;
    this.tracePath = init.tracePath;
    this.spanId = init.spanId;
    this.status = init.status ?? 200;
    this.#headers = init.headers;
    this.#tags = init.tags;
    this.#annotations = init.annotations;
    this.body = init.body as B;
    this.exception = init.exception;
    this.stack = init.stack;
    this.type = init.type;
    this.execTime = init.execTime;
    this.roundTrip = init.roundTrip;
  }

  /** User headers, string to string. */
  get headers(): Record<string, string> {
    return this.#headers ??= {};
  }
  set headers(value: Record<string, string>) {
    this.#headers = value;
  }

  /** A header by name, whatever its case (as Java's `getHeader`): see {@link headerOf}. */
  header(name: string): string | undefined {
    return this.#headers === undefined ? undefined : headerOf(this.#headers, name);
  }

  /** Engine metadata (`rpc`, `broadcast`, `my_cid`), not shown to functions. */
  get tags(): Record<string, string> {
    return this.#tags ??= {};
  }
  set tags(value: Record<string, string>) {
    this.#tags = value;
  }

  /** Trace annotations carried on a reply. */
  get annotations(): Record<string, unknown> {
    return this.#annotations ??= {};
  }
  set annotations(value: Record<string, unknown>) {
    this.#annotations = value;
  }

  static {
    peekAnnotations = (e) => e.#annotations;
    peekHeaders = (e) => e.#headers;
    peekTags = (e) => e.#tags;
    resetTags = (e, tags) => e.#tags = tags;
    bindEnvelope({
      create: () => new EventEnvelope(),
      peekAnnotations,
      peekHeaders,
      peekTags,
      resetTags,
    });
  }

  /** Event id: 32 hex characters unless set. */
  get id(): string {
    return this.#id ??= nextId();
  }
  set id(value: string) {
    this.#id = value;
  }

  /**
   * True when this is an error reply (status 400 or above).
   *
   * @example
   * ```ts
   * import assert from "node:assert";
   * import { EventEnvelope } from "@minimesh/core";
   * assert(new EventEnvelope({ status: 404 }).isError);
   * ```
   */
  get isError(): boolean {
    return this.status >= 400;
  }

  /**
   * The error message of an error reply (the body text, or the `message` of an
   * `{type: "error"}` map), or `undefined` when this is not an error.
   *
   * @example
   * ```ts
   * import assert from "node:assert";
   * import { EventEnvelope } from "@minimesh/core";
   * assert(new EventEnvelope({ status: 500, body: "boom" }).error === "boom");
   * ```
   */
  get error(): string | undefined {
    if (!this.isError) return undefined;
    const b = this.body;
    if (typeof b === "string") return b;
    if (b && typeof b === "object" && (b as Record<string, unknown>).type === "error") {
      return String((b as Record<string, unknown>).message);
    }
    return b === undefined || b === null ? `Error ${this.status}` : JSON.stringify(toPlain(b));
  }

  /**
   * Sets a header, turning the value into a string (null becomes "", a Date its ISO-8601
   * form) and removing CR/LF, as the Java original does. Returns this envelope.
   *
   * @example
   * ```ts
   * import assert from "node:assert";
   * import { EventEnvelope } from "@minimesh/core";
   * const e = new EventEnvelope().setHeader("n", 3);
   * assert(e.headers.n === "3");
   * ```
   */
  setHeader(key: string, value: unknown): this {
    this.headers[key] = headerValue(value);
    return this;
  }

  /**
   * A copy of this envelope: maps are copied, the body is shared.
   *
   * @example
   * ```ts
   * import assert from "node:assert";
   * import { EventEnvelope } from "@minimesh/core";
   * const a = new EventEnvelope({ headers: { x: "1" } });
   * const b = a.copy();
   * b.headers.x = "2";
   * assert(a.headers.x === "1");
   * ```
   */
  copy(): EventEnvelope<B> {
    const c = new EventEnvelope<B>(this);
    c.headers = { ...this.headers };
    c.tags = { ...this.tags };
    c.annotations = { ...this.annotations };
    return c;
  }

  /**
   * The envelope as a plain map with the keys of `format` (absent fields left out). STANDARD
   * always has `id` and `headers`.
   *
   * @example
   * ```ts
   * import assert from "node:assert";
   * import { EventEnvelope } from "@minimesh/core";
   * const m = new EventEnvelope({ id: "e1", to: "a.b" }).toMap("standard");
   * assert(m.to === "a.b" && m.id === "e1");
   * ```
   */
  toMap(format: WireFormat = "compact"): Record<string, unknown> {
    const keyIndex = format === "compact" ? 1 : 2;
    const out: Record<string, unknown> = {};
    for (const f of FIELDS) {
      const value = this[f[0]];
      if (value === undefined || value === null) continue;
      if ((f[3] === "strmap" || f[3] === "anymap") && isEmpty(value as object)) {
        if (!(format === "standard" && f[0] === "headers")) continue;
      }
      out[f[keyIndex]] = f[3] === "any" || f[3] === "anymap" ? toPlain(value) : value;
    }
    return out;
  }

  /**
   * Serialises the envelope as MsgPack in the given key set (COMPACT by default, as the mesh
   * sends). Small results may share their `buffer` with other results (as Node's pooled
   * Buffers do), so use `byteOffset` and `byteLength` with it.
   *
   * @example
   * ```ts
   * import assert from "node:assert";
   * import { EventEnvelope } from "@minimesh/core";
   * const bytes = new EventEnvelope({ to: "a.b", body: new Uint8Array([1, 2]) }).toBytes();
   * assert(bytes instanceof Uint8Array);
   * ```
   */
  toBytes(format: WireFormat = "compact"): Uint8Array {
    return encode(this, format);
  }

  /**
   * Builds an envelope from a decoded map in either key set (detected as the Java original does:
   * any key longer than one character means STANDARD). Unknown keys are ignored.
   *
   * @throws {EnvelopeDecodeError} When a field has the wrong type.
   * @example
   * ```ts
   * import assert from "node:assert";
   * import { EventEnvelope } from "@minimesh/core";
   * const e = EventEnvelope.fromMap({ T: "a.b", H: { k: "v" } });
   * assert(e.to === "a.b" && e.headers.k === "v");
   * ```
   */
  static fromMap(map: Record<string, unknown>): EventEnvelope {
    const standard = isStandard(map);
    const e = new EventEnvelope();
    for (const key in map) {
      const f = BY_KEY.get(key);
      if (!f || f[standard ? 2 : 1] !== key) continue;
      const value = map[key];
      if (value === null || value === undefined) continue;
      // deno-lint-ignore no-explicit-any
      (e as any)[f[0]] = checkField(f[0], f[3], value);
    }
    return e;
  }

  /**
   * Decodes MsgPack bytes in either key set.
   *
   * @param bytes The envelope's bytes.
   * @param options `nulls: false` drops null values from the body's maps, as the Java original
   * reads them unless `serializer.null.transport=true` (lists keep theirs).
   * @throws {EnvelopeDecodeError} For malformed or truncated bytes, a top level that is not a
   * map, non-string keys, a field of the wrong type, or a message over `options.budget`.
   * @example
   * ```ts
   * import assert from "node:assert";
   * import { EventEnvelope } from "@minimesh/core";
   * const e = EventEnvelope.fromBytes(new EventEnvelope({ to: "a.b" }).toBytes("standard"));
   * assert(e.to === "a.b");
   * ```
   */
  static fromBytes(bytes: Uint8Array, options: DecodeOptions = {}): EventEnvelope {
    if (bytes instanceof Uint8Array) checkBudget(bytes, options.budget ?? DEFAULT_BUDGET);
    const e = (decodeFast(bytes) as EventEnvelope | undefined) ??
      EventEnvelope.fromMap(decodeMap(bytes));
    if (options.nulls === false && typeof e.body === "object" && e.body !== null) {
      e.body = withoutNullsInMaps(e.body);
    }
    return e;
  }

  /**
   * The key set that `bytes` use, for replying in the caller's format.
   *
   * @throws {EnvelopeDecodeError} As {@link EventEnvelope.fromBytes}.
   * @example
   * ```ts
   * import assert from "node:assert";
   * import { EventEnvelope } from "@minimesh/core";
   * const bytes = new EventEnvelope({ to: "a.b" }).toBytes("standard");
   * assert(EventEnvelope.formatOf(bytes) === "standard");
   * ```
   */
  static formatOf(bytes: Uint8Array): WireFormat {
    // The keys tell, without decoding the body; anything unusual is decoded (within budget).
    const fast = bytes instanceof Uint8Array ? formatFast(bytes) : undefined;
    if (fast !== undefined) return fast;
    if (bytes instanceof Uint8Array) checkBudget(bytes);
    return isStandard(decodeMap(bytes)) ? "standard" : "compact";
  }
}
