import { PgQueue } from "../../src/queue/pg/backend";
import { useFreshDatabase } from "../support/db";
import { queueAdapterSuite } from "./adapter-suite";

/** pgqueue (`state.queue_messages`) against the shared adapter suite. */

const db = useFreshDatabase();

queueAdapterSuite("pgqueue", async () => ({
  open: async () => PgQueue.open(db().url, { name: "adapter-suite", connections: 4 }),
  clear: async () => {
    await db().sql`DELETE FROM state.queue_messages`;
  },
  publishRaw: async (queue, payload) => {
    await db().sql`
      INSERT INTO state.queue_messages (queue_name, payload)
      VALUES (${queue}, ${JSON.stringify(payload)}::text::jsonb)`;
  },
}));
