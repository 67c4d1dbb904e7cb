// For the npm build only (tsc): the kafkajs internals that kafka/kafkajs/_patch.ts patches.
// (Deno types the dynamic imports in kafka/kafkajs/_patch.ts by itself.)
declare module "kafkajs/src/network/requestQueue/index.js" {
  export default class RequestQueue {
    pending: unknown[];
    throttledUntil: number;
    scheduleCheckPendingRequests(): void;
  }
}
declare module "kafkajs/src/consumer/consumerGroup.js" {
  export default class ConsumerGroup {
    recoverFromFetch(e: Error): Promise<void>;
  }
}
declare module "kafkajs/src/consumer/runner.js" {
  export default class Runner {
    running: boolean;
    fetch(nodeId: number): Promise<unknown[]>;
  }
}
