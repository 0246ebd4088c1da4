/**
 * Object URIs: `<root>/<key>` where root is the configured OBJECT_STORE_URL
 * (`file:///abs/dir` or `s3://bucket/prefix`, no trailing slash) and each key
 * segment is percent-encoded. These pure functions are the one place that
 * decides whether a URI lies under a root.
 */

function segmentOk(s: string): boolean {
  if (s === "" || s === "." || s === "..") return false;
  if (s.includes("/") || s.includes("\\")) return false;
  for (let i = 0; i < s.length; i++) if (s.charCodeAt(i) < 0x20) return false;
  return true;
}

/** Splits a key into segments, refusing empty, `.`/`..`, control characters and backslashes. */
export function keySegments(key: string): string[] {
  const segments = key.split("/");
  for (const s of segments) {
    if (!segmentOk(s)) {
      throw new Error(
        `object key ${JSON.stringify(key)} has an invalid segment ${JSON.stringify(s)}`,
      );
    }
  }
  return segments;
}

export function uriFor(root: string, key: string): string {
  return `${root}/${keySegments(key).map(encodeURIComponent).join("/")}`;
}

/**
 * The key a URI names when it lies strictly under `root` (optionally under
 * `root/<prefix>` too), otherwise undefined. Refuses other schemes, `..`,
 * `.`, empty segments, encoded slashes and anything that does not decode cleanly.
 */
export function keyUnder(root: string, uri: string, prefix?: string): string | undefined {
  const base = `${root}/`;
  if (!uri.startsWith(base)) return undefined;
  const rest = uri.slice(base.length);
  if (rest.includes("?") || rest.includes("#")) return undefined;
  const decoded: string[] = [];
  for (const raw of rest.split("/")) {
    let segment: string;
    try {
      segment = decodeURIComponent(raw);
    } catch {
      return undefined;
    }
    if (encodeURIComponent(segment) !== raw) return undefined; // one canonical spelling only
    if (!segmentOk(segment)) return undefined; // e.g. an encoded slash inside one segment
    decoded.push(segment);
  }
  const key = decoded.join("/");
  if (prefix !== undefined && !key.startsWith(`${prefix}/`)) return undefined;
  return key;
}
