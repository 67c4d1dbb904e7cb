/**
 * Event records on Kafka, as the Java original writes them (docs/wire.md): an explicit partition, a
 * unique 32-hex key, headers `_event_=1` and `_rx_=<recipient origin>`, and the COMPACT envelope as
 * the value.
 *
 * @module
 */
import { nextId } from "../bus/_ids.ts";
import { EventEnvelope } from "../bus/envelope.ts";
import type { InRecord, OutRecord } from "./client.ts";

/**
 * The record carrying `event` to `recipient` (an origin id, or `monitor-N`). Pass the COMPACT
 * bytes instead of the envelope when they are at hand already.
 */
export function eventRecord(
  topic: string,
  partition: number,
  recipient: string,
  event: EventEnvelope | Uint8Array,
): OutRecord {
  return {
    topic,
    partition,
    key: nextId(), // 32 hex, unique: a random process prefix and a counter
    headers: { _event_: "1", _rx_: recipient },
    value: event instanceof Uint8Array ? event : event.toBytes(),
  };
}

/**
 * The envelope in an event record, `undefined` for a record that is not an event (no
 * `_event_` header).
 *
 * @throws {EnvelopeDecodeError} When the value is not a valid envelope.
 */
export function eventOf(record: InRecord): EventEnvelope | undefined {
  if (record.headers._event_ === undefined) return undefined;
  return EventEnvelope.fromBytes(record.value);
}

/**
 * Splits a virtual topic, `multiplex.0001-007`, into the Kafka topic and partition,
 * `["multiplex.0001", 7]`, at the last `-`. The result is frozen and may be shared: the
 * connector splits its peers' topics for every event it sends.
 */
export function splitVirtualTopic(vt: string): readonly [string, number] {
  let parts = SPLIT.get(vt);
  if (parts === undefined) {
    const dash = vt.lastIndexOf("-");
    if (SPLIT.size >= 4096) SPLIT.clear();
    parts = Object.freeze([vt.slice(0, dash), Number(vt.slice(dash + 1))] as const);
    SPLIT.set(vt, parts);
  }
  return parts;
}
const SPLIT = new Map<string, readonly [string, number]>();
