/**
 * The library's internals that its own tests, benchmarks and tools use. Not a public entry
 * point (it is not in `deno.json`'s exports, nor in the npm package): nothing here is stable.
 *
 * @module
 */
export { envName, parseProperties } from "./bus/config.ts";
export { headerValue, peekTags, toPlain } from "./bus/envelope.ts";
export { libraries, packageVersion, registerLibrary } from "./bus/libraries.ts";
export { inboxOf, statusOf, TEMPORARY_INBOX } from "./bus/platform.ts";
export { isOriginId, newOriginId, routeProblem, splitAddress, validateRoute } from "./bus/route.ts";
export { prometheusText } from "./bus/metrics.ts";
export { AsyncQueue } from "./bus/_async_queue.ts";
export { DeadlineTimer, TICK_MS } from "./bus/_deadlines.ts";
export type { Deadline } from "./bus/_deadlines.ts";
export { DEFAULT_LIMITS, serverLimits } from "./runtime/server.ts";
export { serve, WebSocketClient } from "#runtime";
export { INIT_HEADER, LOOPBACK_HEADER } from "./kafka/client.ts";
export { KafkaLink } from "./kafka/kafkajs/link.ts";
export type { KafkaLinkOptions } from "./kafka/client.ts";
export { MemoryKafka, MemoryKafkaClient } from "./kafka/memory.ts";
export { eventOf, eventRecord, splitVirtualTopic } from "./kafka/records.ts";
export { keepAliveMs, meshSettings } from "./kafka/settings.ts";
export { ORIGINAL, patchKafkajs, patchRequestQueue } from "./kafka/kafkajs/_patch.ts";
export { json, jsonError } from "./actuator/responses.ts";
export { elapsedText, isoSeconds } from "./protocol/format.ts";
export { BlockAssembler, isBlock, MAX_BLOCK, toBlocks } from "./connector/blocks.ts";
export type { BlockLimits, BlockResult, DroppedSet } from "./connector/blocks.ts";
export { LifeCycle } from "./connector/life_cycle.ts";
export { CLOSE_JOIN_FAILED, PresenceClient } from "./connector/presence_client.ts";
export { RoutingTable } from "./connector/routing_table.ts";
export {
  IDENTITY_HOLD_MS,
  LeaseTable,
  MAX_DEPARTED,
  virtualTopics,
} from "./presence/lease_table.ts";
export type { ConnectionInfo, ControlMessage } from "./presence/lease_table.ts";
export { controlEnvelope, parseControl, snapshotParts } from "./presence/control.ts";
export { CLOSE } from "./protocol/presence.ts";
export type { MonitorMessage } from "./presence/control.ts";
export { MAX_FRAME } from "./presence/sessions.ts";
