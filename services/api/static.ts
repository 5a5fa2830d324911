/**
 * Serves the web UI (webui/dist, built by `npm run build:ui`) from rampartd: files under /assets/ (content-hashed
 * names) with a year-long immutable cache, other existing files as they are, and index.html for every other path
 * that is not under /api (the single-page app's own routes). No directory traversal: the decoded path is resolved
 * and must stay inside the dist directory; dot files and anything that is not a regular file are never served.
 */
import { existsSync, readFileSync, statSync } from 'node:fs';
import { extname, join, resolve, sep } from 'node:path';
import type { Context } from 'hono';
import { API_PREFIX } from './openapi.ts';

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.json': 'application/json; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.ico': 'image/x-icon',
  '.txt': 'text/plain; charset=utf-8',
  '.map': 'application/json; charset=utf-8',
  '.woff2': 'font/woff2',
};

const IMMUTABLE = 'public, max-age=31536000, immutable';

/** webui/dist next to the sources (services/api) or next to the compiled build (build/services/api). */
export function defaultUiDir(): string | undefined {
  const env = process.env.RAMPART_WEBUI_DIR;
  if (env) return resolve(env);
  const here = import.meta.dirname;
  for (const up of ['../..', '../../..']) {
    const dir = resolve(here, up, 'webui/dist');
    if (existsSync(join(dir, 'index.html'))) return dir;
  }
  return undefined;
}

interface CachedFile {
  body: Buffer;
  type: string;
  mtimeMs: number;
}

/**
 * A hono handler for GET/HEAD of non-API paths. `dir` is the built UI; when it has no index.html the handler answers
 * 503 with a plain note (the API keeps working).
 */
export function staticHandler(dir: string | undefined) {
  const root = dir ? resolve(dir) : undefined;
  const cache = new Map<string, CachedFile>();

  const load = (file: string): CachedFile | undefined => {
    let st;
    try {
      st = statSync(file);
    } catch {
      return undefined;
    }
    if (!st.isFile()) return undefined;
    const hit = cache.get(file);
    if (hit && hit.mtimeMs === st.mtimeMs) return hit;
    const entry = { body: readFileSync(file), type: TYPES[extname(file).toLowerCase()] ?? 'application/octet-stream', mtimeMs: st.mtimeMs };
    if (cache.size > 256) cache.clear();
    cache.set(file, entry);
    return entry;
  };

  const send = (c: Context, f: CachedFile, cacheControl: string, status = 200) => {
    c.header('Content-Type', f.type);
    c.header('Cache-Control', cacheControl);
    if (c.req.method === 'HEAD') return c.body(null, status as 200);
    return c.body(new Uint8Array(f.body), status as 200);
  };

  return (c: Context): Response | Promise<Response> => {
    const path = c.req.path;
    if (path === API_PREFIX || path.startsWith(API_PREFIX + '/')) return c.notFound();
    if (!root) {
      c.header('Cache-Control', 'no-store');
      return c.text('The web UI is not built: run `npm run build:ui` (the API is at /api/v1).', 503);
    }
    let decoded: string;
    try {
      decoded = decodeURIComponent(path);
    } catch {
      return c.text('bad path', 400);
    }
    const segments = decoded.split('/').filter(Boolean);
    const bad = segments.some((s) => s === '..' || s.startsWith('.') || s.includes('\\') || s.includes('\0'));
    const file = resolve(root, ...segments);
    const inside = file === root || file.startsWith(root + sep);
    if (!bad && inside && segments.length) {
      const f = load(file);
      if (f) return send(c, f, segments[0] === 'assets' ? IMMUTABLE : 'no-cache');
      // A missing asset is a 404, not the app (a stale hashed name must not be answered with HTML).
      if (segments[0] === 'assets' || extname(decoded)) return c.text('not found', 404);
    } else if (bad || !inside) {
      return c.text('not found', 404);
    }
    const index = load(join(root, 'index.html'));
    if (!index) return c.text('The web UI is not built: run `npm run build:ui`.', 503);
    return send(c, index, 'no-cache');
  };
}
