import { jetstream } from "@nats-io/jetstream";
import { connect } from "@nats-io/transport-node";
import { TEST_NATS_URL, useNatsQueue } from "../support/nats";
import { queueAdapterSuite } from "./adapter-suite";

/** NatsQueue against the shared adapter suite, on the shared NATS in a namespace of this file's own. */

const nats = useNatsQueue("adapter");

queueAdapterSuite("nats", async () => ({
  open: () => nats().open("adapter-suite"),
  clear: () => nats().queue.purge(),
  publishRaw: async (queue, payload) => {
    const nc = await connect({ servers: TEST_NATS_URL.replace(/nats:\/\//g, "").split(",") });
    try {
      await jetstream(nc).publish(nats().queue.names.of(queue).ready, JSON.stringify(payload));
    } finally {
      await nc.close();
    }
  },
}));
