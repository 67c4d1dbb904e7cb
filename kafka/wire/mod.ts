/**
 * The wire fast paths of the default Kafka client: produce (v11) and fetch (v17) requests
 * written, and fetch responses read, by us, sent over `@platformatic/kafka`'s own connections
 * (about 1 µs a record instead of 4-5 under Deno; docs/benchmarks.md). Everything else (the
 * connections, metadata, SASL, TLS, retries of the connection, response errors, compressed
 * batches) stays the library's.
 *
 * They use these parts of `@platformatic/kafka` that its documentation does not promise:
 *
 * | internal | what for |
 * |---|---|
 * | `kGetApi` | the API version the cluster speaks (else the library's own request is used) |
 * | `kMetadata` | the partition's leader, from the client's metadata cache |
 * | `kGetConnection` | the client's connection to that broker |
 * | `createAPI` | a request with our body, its response through the library's parser |
 * | `Writer`, `Reader`, `readRecordsBatch` | the body's frame; a compressed batch read by the library |
 * | `ResponseError`, `produceV11.parseResponse`, `crc32c` | the library's errors, produce response and checksum |
 *
 * They were verified with the version in {@link VERIFIED_VERSION}, which deno.json pins exactly;
 * `version_test.ts` fails on any other until they are verified again: the byte-for-byte tests
 * beside it, the fallback to the library's requests (`tests/broker/platformatic_link_test.ts`),
 * and `bench/mesh_bench.ts`. A link made with `libraryWire: true` does without them.
 *
 * @module
 */
export { FETCH_VERSION, fetchPartition, fromLibrary, topicIdBytes } from "./fetch.ts";
export type { FetchedBatch, FetchedPartition, FetchedRecord, FetchOptions } from "./fetch.ts";
export { PRODUCE_TIMEOUT_MS, PRODUCE_VERSION, produceDirect } from "./produce.ts";
export type { ConnectionProgress, ProduceRecord } from "./produce.ts";

/** The `@platformatic/kafka` version these fast paths were verified with. */
export const VERIFIED_VERSION = "2.12.1";
