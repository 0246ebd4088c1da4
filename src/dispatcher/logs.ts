/** The dispatcher's log messages that tests and operators wait for: match on these, never on a copy. */
export const DISPATCHER_LOG = {
  /** Logged once it serves requests (fields: port, keys, kid). */
  listening: "dispatcher listening",
} as const;
