// For the npm build only (tsc): the kafkajs internal that connector/kafka_link.ts patches.
// Deno reads the same shape from connector/_kafkajs_request_queue.d.ts via @ts-types.
declare module "kafkajs/src/network/requestQueue/index.js" {
  export default class RequestQueue {
    pending: unknown[];
    throttledUntil: number;
    scheduleCheckPendingRequests(): void;
  }
}
