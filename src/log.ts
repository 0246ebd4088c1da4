/**
 * Structured logs: one JSON object per line on stderr, with a level, the
 * component, and task_id / attempt / message id where they apply.
 */

export type Level = "debug" | "info" | "warn" | "error";
export type Fields = Record<string, unknown>;

const rank: Record<Level, number> = { debug: 10, info: 20, warn: 30, error: 40 };
let threshold: Level = "info";

export function setLogLevel(level: Level): void {
  threshold = level;
}

let emit = (line: Fields): void => {
  process.stderr.write(`${JSON.stringify(line)}\n`);
};

/**
 * Keeps this process's log lines in `lines` instead of writing them to
 * stderr, until `restore`: for tests that provoke errors on purpose, so the
 * run prints no alarming line and the test can look at what was logged.
 */
export function captureLogs(): { lines: Fields[]; restore(): void } {
  const lines: Fields[] = [];
  const previous = emit;
  emit = (line) => {
    lines.push(line);
  };
  return {
    lines,
    restore: () => {
      emit = previous;
    },
  };
}

function errorFields(err: unknown): Fields {
  if (!(err instanceof Error)) return { error: String(err) };
  const causes: string[] = [];
  let cause: unknown = err.cause;
  while (cause !== undefined && causes.length < 5) {
    causes.push(cause instanceof Error ? cause.message : String(cause));
    cause = cause instanceof Error ? cause.cause : undefined;
  }
  const code = "code" in err && typeof err.code === "string" ? err.code : undefined;
  return { error: err.message, ...(code ? { code } : {}), ...(causes.length ? { causes } : {}) };
}

export interface Logger {
  debug(msg: string, fields?: Fields): void;
  info(msg: string, fields?: Fields): void;
  warn(msg: string, fields?: Fields): void;
  error(msg: string, fields?: Fields): void;
  child(fields: Fields): Logger;
}

export function createLogger(component: string, base: Fields = {}): Logger {
  const write = (level: Level, msg: string, fields: Fields = {}) => {
    if (rank[level] < rank[threshold]) return;
    const { err, ...rest } = fields;
    const line = {
      ts: new Date().toISOString(),
      level,
      component,
      msg,
      ...base,
      ...rest,
      ...(err === undefined ? {} : errorFields(err)),
    };
    emit(line);
  };
  return {
    debug: (msg, fields) => write("debug", msg, fields),
    info: (msg, fields) => write("info", msg, fields),
    warn: (msg, fields) => write("warn", msg, fields),
    error: (msg, fields) => write("error", msg, fields),
    child: (fields) => createLogger(component, { ...base, ...fields }),
  };
}
