-- The queue API of pgqueue as SECURITY DEFINER functions (invariant 9): the
-- worker and the sink reach state.queue_messages only through these, each
-- for its one queue, and hold no privilege on any state table; the
-- dispatcher publishes and harness_redriver redrives through them too.
-- Every function pins search_path, names every object with its schema, and
-- acts only on messages of the queue it was called for. Who may execute
-- which is granted by `harness migrate` (src/db/grants.ts), every run.

-- May the session's user consume `p_queue`? The owner of schema state (and
-- a superuser) may consume every queue; harness_worker task_wakeup;
-- harness_sink buffer_queue. Anyone else: 42501. A dead-letter queue is
-- never consumed (22023).
CREATE FUNCTION state.queue_consumer_check(p_queue text) RETURNS void
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  v_group text := CASE p_queue
    WHEN 'task_wakeup' THEN 'harness_worker'
    WHEN 'buffer_queue' THEN 'harness_sink'
  END;
BEGIN
  IF p_queue LIKE '%.dlq' THEN
    RAISE EXCEPTION 'a consumer consumes a live queue, not %', p_queue
      USING ERRCODE = 'invalid_parameter_value';
  END IF;
  IF pg_has_role(session_user, (SELECT n.nspowner FROM pg_namespace n WHERE n.nspname = 'state'), 'USAGE') THEN
    RETURN;
  END IF;
  IF v_group IS NOT NULL AND to_regrole(v_group) IS NOT NULL
     AND pg_has_role(session_user, v_group::regrole, 'USAGE') THEN
    RETURN;
  END IF;
  RAISE EXCEPTION 'the user % may not consume the queue %', session_user, p_queue
    USING ERRCODE = 'insufficient_privilege';
END
$$;
--> statement-breakpoint

-- Receive: up to p_max visible messages (SKIP LOCKED), each counted as one
-- more receive and hidden for the visibility timeout; those already received
-- p_max_receives times move to <queue>.dlq instead, keeping their last error.
CREATE FUNCTION state.queue_receive(
  p_queue text, p_max integer, p_visibility_ms double precision, p_max_receives integer
) RETURNS TABLE (
  id bigint, queue_name text, payload jsonb, receive_count integer, last_error text, created_at timestamptz
)
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_column
BEGIN
  PERFORM state.queue_consumer_check(p_queue);
  RETURN QUERY
  WITH candidates AS (
    SELECT q.id, q.receive_count FROM state.queue_messages q
    WHERE q.queue_name = p_queue AND q.queue_name NOT LIKE '%.dlq' AND q.available_at <= now()
    ORDER BY q.available_at, q.id
    LIMIT p_max
    FOR UPDATE SKIP LOCKED
  ), exhausted AS (
    UPDATE state.queue_messages m
    SET queue_name = p_queue || '.dlq',
        last_error = coalesce(m.last_error, 'no error recorded') || ' (dead-lettered after ' || m.receive_count || ' receives)',
        available_at = now()
    FROM candidates c
    WHERE m.id = c.id AND c.receive_count >= p_max_receives
    RETURNING m.id
  )
  UPDATE state.queue_messages m
  SET receive_count = m.receive_count + 1,
      available_at = now() + make_interval(secs => p_visibility_ms / 1000)
  FROM candidates c
  WHERE m.id = c.id AND c.receive_count < p_max_receives
  RETURNING m.id, m.queue_name, m.payload, m.receive_count, m.last_error, m.created_at;
END
$$;
--> statement-breakpoint

-- Ack: deletes the listed messages of p_queue; returns the ids that were there.
CREATE FUNCTION state.queue_ack(p_queue text, p_ids bigint[]) RETURNS SETOF bigint
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
  PERFORM state.queue_consumer_check(p_queue);
  RETURN QUERY
  DELETE FROM state.queue_messages m
  WHERE m.id = ANY(p_ids) AND m.queue_name = p_queue
  RETURNING m.id;
END
$$;
--> statement-breakpoint

-- Extend: hides a live message of p_queue until p_until, or for p_ms from now.
CREATE FUNCTION state.queue_extend(
  p_queue text, p_id bigint, p_until timestamptz, p_ms double precision
) RETURNS boolean
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
  PERFORM state.queue_consumer_check(p_queue);
  UPDATE state.queue_messages m
  SET available_at = coalesce(p_until, now() + make_interval(secs => coalesce(p_ms, 0) / 1000))
  WHERE m.id = p_id AND m.queue_name = p_queue;
  RETURN FOUND;
END
$$;
--> statement-breakpoint

-- Record error: notes why handling a message of p_queue failed.
CREATE FUNCTION state.queue_record_error(p_queue text, p_id bigint, p_error text) RETURNS boolean
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
  PERFORM state.queue_consumer_check(p_queue);
  UPDATE state.queue_messages m SET last_error = p_error
  WHERE m.id = p_id AND m.queue_name = p_queue;
  RETURN FOUND;
END
$$;
--> statement-breakpoint

-- Dead-letter: moves a live message of p_queue to <queue>.dlq now, with the reason.
CREATE FUNCTION state.queue_dead_letter(p_queue text, p_id bigint, p_error text) RETURNS boolean
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
  PERFORM state.queue_consumer_check(p_queue);
  UPDATE state.queue_messages m
  SET queue_name = p_queue || '.dlq', last_error = p_error, available_at = now()
  WHERE m.id = p_id AND m.queue_name = p_queue AND m.queue_name NOT LIKE '%.dlq';
  RETURN FOUND;
END
$$;
--> statement-breakpoint

-- Depth of p_queue alone (for --until-idle): ready, in flight, delayed.
CREATE FUNCTION state.queue_depth(p_queue text)
RETURNS TABLE (ready integer, in_flight integer, delayed integer)
LANGUAGE plpgsql SECURITY DEFINER STABLE
SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_column
BEGIN
  PERFORM state.queue_consumer_check(p_queue);
  RETURN QUERY
  SELECT count(*) FILTER (WHERE q.available_at <= now())::integer,
         count(*) FILTER (WHERE q.available_at > now() AND q.receive_count > 0)::integer,
         count(*) FILTER (WHERE q.available_at > now() AND q.receive_count = 0)::integer
  FROM state.queue_messages q WHERE q.queue_name = p_queue;
END
$$;
--> statement-breakpoint

-- Publish (the dispatcher's outbox drainer): inserts messages of a live
-- queue, each visible from its available_at (else now), and notifies the
-- queue's listeners at commit. Returns the ids in order.
CREATE FUNCTION state.queue_publish(p_queue text, p_payloads jsonb[], p_available_at timestamptz[])
RETURNS SETOF bigint
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
  IF p_queue LIKE '%.dlq' THEN
    RAISE EXCEPTION 'messages are published to a live queue, not to %', p_queue
      USING ERRCODE = 'invalid_parameter_value';
  END IF;
  PERFORM pg_notify('harness_queue', p_queue);
  RETURN QUERY
  INSERT INTO state.queue_messages (queue_name, payload, available_at)
  SELECT p_queue, u.payload, coalesce(u.at, now())
  FROM unnest(p_payloads, p_available_at) WITH ORDINALITY AS u(payload, at, n)
  ORDER BY u.n
  RETURNING id;
END
$$;
--> statement-breakpoint

-- Redrive (dlq redrive, the dashboard): dead letters of p_queue (all, or one
-- id) back to it, visible now, with a fresh receive count. Returns how many.
CREATE FUNCTION state.queue_redrive(p_queue text, p_id bigint) RETURNS integer
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  v_moved integer;
BEGIN
  IF p_queue LIKE '%.dlq' THEN
    RAISE EXCEPTION 'dead letters are redriven to a live queue, not to %', p_queue
      USING ERRCODE = 'invalid_parameter_value';
  END IF;
  UPDATE state.queue_messages m
  SET queue_name = p_queue, receive_count = 0, available_at = now()
  WHERE m.queue_name = p_queue || '.dlq' AND (p_id IS NULL OR m.id = p_id);
  GET DIAGNOSTICS v_moved = ROW_COUNT;
  PERFORM pg_notify('harness_queue', p_queue);
  RETURN v_moved;
END
$$;
--> statement-breakpoint

REVOKE ALL ON FUNCTION
  state.queue_consumer_check(text),
  state.queue_receive(text, integer, double precision, integer),
  state.queue_ack(text, bigint[]),
  state.queue_extend(text, bigint, timestamptz, double precision),
  state.queue_record_error(text, bigint, text),
  state.queue_dead_letter(text, bigint, text),
  state.queue_depth(text),
  state.queue_publish(text, jsonb[], timestamptz[]),
  state.queue_redrive(text, bigint)
FROM PUBLIC;
