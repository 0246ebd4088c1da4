import {
  close,
  closeSync,
  constants,
  fstatSync,
  lstatSync,
  openSync,
  read,
  readlinkSync,
  readSync,
} from "node:fs";
import { join } from "node:path";

/**
 * The read side of the file store: one object opened without ever following
 * a symbolic link under the root, its size and bytes from that one open file.
 *
 * The folders are lstat'ed, the file is opened with O_NOFOLLOW, and then the
 * kernel's own path of the open file (/proc/self/fd) must be the path asked
 * for, so a folder swapped for a link between the check and the open is
 * caught too. These calls and the read of an object of up to
 * READ_AT_ONCE_BYTES are made synchronously: on a local directory each is a
 * few microseconds answered from the kernel's caches, while a trip to the
 * I/O threads costs ten times that in CPU, and the sink makes them for every
 * batch. A larger object streams, a chunk per pull, off the event loop.
 */

/** O_NOFOLLOW: a link as the last component fails with ELOOP. O_NONBLOCK: a FIFO cannot hang the open. */
const READ_FLAGS = constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK;
/** An object of up to this size is read whole at open; a larger one streams. */
export const READ_AT_ONCE_BYTES = 1024 * 1024;
const CHUNK_BYTES = 256 * 1024;

export type FileOpen =
  | { kind: "file"; size: number; stream: ReadableStream<Uint8Array> }
  | { kind: "missing" }
  | { kind: "symlink" };

export const errorCode = (err: unknown): unknown =>
  typeof err === "object" && err !== null && "code" in err ? err.code : undefined;

/** Whether a folder between `dir` and the object is a symbolic link (lstat: never followed). */
function folderIsLink(dir: string, segments: readonly string[]): boolean {
  let path = dir;
  for (let i = 0; i < segments.length - 1; i++) {
    path = join(path, segments[i] ?? "");
    try {
      if (lstatSync(path).isSymbolicLink()) return true;
    } catch (err) {
      if (errorCode(err) === "ENOENT") return false; // the open reports the missing object
      throw err;
    }
  }
  return false;
}

/** Where the kernel says an open file is, or undefined where there is no /proc. */
function kernelPath(fd: number): string | undefined {
  try {
    return readlinkSync(`/proc/self/fd/${fd}`);
  } catch (err) {
    if (errorCode(err) === "ENOENT") return undefined;
    throw err;
  }
}

/**
 * Up to `size + 1` bytes of the file: all of it when it still has the size
 * its stat gave (`ended`), else the object grew meanwhile and the rest is
 * left for the stream, so that its reader sees every byte and counts them.
 */
function readAtOnce(fd: number, size: number): { bytes: Uint8Array; ended: boolean } {
  const bytes = new Uint8Array(size + 1);
  let at = 0;
  while (at < bytes.byteLength) {
    const n = readSync(fd, bytes, at, bytes.byteLength - at, null);
    if (n === 0) return { bytes: bytes.subarray(0, at), ended: true };
    at += n;
  }
  return { bytes, ended: false };
}

function readChunk(fd: number): Promise<Uint8Array> {
  const chunk = new Uint8Array(CHUNK_BYTES);
  return new Promise((resolve, reject) => {
    read(fd, chunk, 0, CHUNK_BYTES, null, (err, n) =>
      err ? reject(err) : resolve(chunk.subarray(0, n)),
    );
  });
}

/**
 * The file's bytes: `first` (when given), then the rest read on demand
 * unless `ended`; the file is closed at the end, on error or on cancel.
 */
function fileStream(fd: number, first: Uint8Array | undefined, ended: boolean) {
  let open = true;
  const release = () =>
    new Promise<void>((resolve, reject) => {
      if (!open) return resolve();
      open = false;
      close(fd, (err) => (err ? reject(err) : resolve()));
    });
  if (ended) {
    open = false;
    closeSync(fd);
  }
  return new ReadableStream<Uint8Array>(
    {
      start(controller) {
        if (first !== undefined && first.byteLength > 0) controller.enqueue(first);
        if (ended) controller.close();
      },
      async pull(controller) {
        try {
          const chunk = await readChunk(fd);
          if (chunk.byteLength > 0) return controller.enqueue(chunk);
          await release();
          controller.close();
        } catch (err) {
          await release();
          throw err;
        }
      },
      cancel: release,
    },
    { highWaterMark: 0 },
  );
}

type Inspected =
  | { kind: "missing" | "symlink" }
  | { kind: "file"; size: number; first?: { bytes: Uint8Array; ended: boolean } };

/** What the open `fd` is: the object at `path` (and its bytes, when small), else why not. */
function inspect(fd: number, path: string): Inspected {
  const opened = kernelPath(fd);
  if (opened !== undefined && opened !== path) return { kind: "symlink" };
  const s = fstatSync(fd);
  if (!s.isFile()) return { kind: "missing" };
  if (s.size > READ_AT_ONCE_BYTES) return { kind: "file", size: s.size };
  return { kind: "file", size: s.size, first: readAtOnce(fd, s.size) };
}

/** Opens `path` (`dir` joined with `segments`, `dir` a real path) for reading, never through a link. */
export function openFile(dir: string, segments: readonly string[]): FileOpen {
  if (folderIsLink(dir, segments)) return { kind: "symlink" };
  const path = join(dir, ...segments);
  let fd: number;
  try {
    fd = openSync(path, READ_FLAGS);
  } catch (err) {
    const code = errorCode(err);
    if (code === "ENOENT" || code === "ENOTDIR") return { kind: "missing" };
    if (code === "ELOOP") return { kind: "symlink" };
    throw err;
  }
  let found: Inspected;
  try {
    found = inspect(fd, path);
  } catch (err) {
    closeSync(fd);
    throw err;
  }
  if (found.kind !== "file") {
    closeSync(fd);
    return found;
  }
  const stream = fileStream(fd, found.first?.bytes, found.first?.ended ?? false);
  return { kind: "file", size: found.size, stream };
}
