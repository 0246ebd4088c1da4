-- Before one attempt's batch may be in the outbox only once (outbox_batch_once_idx,
-- next migration), keep the first row of each (task, attempt, batch_uri) and drop
-- its repeats. The sink is idempotent and every repeat names the same batch, so
-- dropping them loses nothing, published or pending.
DELETE FROM "state"."outbox" o
USING "state"."outbox" k
WHERE o."queue_name" = 'buffer_queue' AND k."queue_name" = 'buffer_queue'
  AND o."task_id" = k."task_id" AND o."attempt" = k."attempt"
  AND o."payload"->>'batch_uri' = k."payload"->>'batch_uri'
  AND o."id" > k."id";
