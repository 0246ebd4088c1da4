import { basename } from "node:path";
import type { HTMLBundle } from "bun";
import page from "./web/index.html";
import login from "./web/login.html";

/**
 * The browser side, bundled by Bun from its HTML imports: in the compiled
 * binary `bun build --compile` has already bundled it (the files live in
 * the binary's own file system); from a checkout it is bundled once at
 * start. Either way the dashboard serves it itself, so every page can be
 * refused without a session, and it needs nothing from the network.
 */

export interface Asset {
  body: Blob | string;
  type: string;
}

export interface WebAssets {
  /** The app's page (every path but /login): the router in the browser picks the view. */
  page: string;
  login: string;
  /** Scripts and stylesheets by URL path (`/chunk-….js`). */
  files: Map<string, Asset>;
}

async function fromCompiled(): Promise<WebAssets | null> {
  if (page.files === undefined || login.files === undefined) return null;
  const files = new Map<string, Asset>();
  for (const f of [...page.files, ...login.files]) {
    if (f.loader === "html") continue;
    files.set(`/${basename(f.path)}`, { body: Bun.file(f.path), type: f.headers["content-type"] });
  }
  const html = (b: HTMLBundle) => Bun.file(b.index).text();
  return { page: await html(page), login: await html(login), files };
}

async function fromSource(): Promise<WebAssets> {
  const built = await Bun.build({
    entrypoints: [page.index, login.index],
    target: "browser",
    minify: true,
    publicPath: "/",
  });
  if (!built.success) {
    throw new Error(`bundling the dashboard: ${built.logs.map(String).join("; ")}`);
  }
  const files = new Map<string, Asset>();
  const pages = new Map<string, string>();
  for (const o of built.outputs) {
    const name = basename(o.path);
    if (name.endsWith(".html")) pages.set(name, await o.text());
    else files.set(`/${name}`, { body: await o.text(), type: o.type });
  }
  const index = pages.get(basename(page.index));
  const loginPage = pages.get(basename(login.index));
  if (index === undefined || loginPage === undefined) {
    throw new Error(`bundling the dashboard gave no page: ${[...pages.keys()].join(", ")}`);
  }
  return { page: index, login: loginPage, files };
}

let loaded: Promise<WebAssets> | undefined;

export function webAssets(): Promise<WebAssets> {
  loaded ??= fromCompiled().then((compiled) => compiled ?? fromSource());
  return loaded;
}
