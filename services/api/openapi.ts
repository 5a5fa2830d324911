/**
 * The OpenAPI 3.1 document of the API, generated from the route list (routes/define.ts) and the zod schemas of
 * schemas.ts with zod's JSON Schema export. Served at GET /api/v1/openapi.json; a test checks that every route
 * hono knows is in it.
 */
import { z } from 'zod';
import { Config } from '../core/schema.ts';
import type { AnyRoute } from './routes/define.ts';
import { SESSION_COOKIE } from './routes/define.ts';
import * as S from './schemas.ts';

export const API_PREFIX = '/api/v1';

/** Shared response schemas, by component name. */
const NAMED: Record<string, z.ZodType> = {
  Error: S.ErrorBody,
  Session: S.Session,
  User: S.User,
  Status: S.Status,
  VersionMeta: S.VersionMeta,
  Version: S.VersionWithDocument,
  Counters: S.Counters,
  Block: S.Block,
  AuditEntry: S.AuditEntry,
};

const STATUS_TEXT: Record<number, string> = {
  400: 'malformed JSON or not UTF-8',
  401: 'not logged in, or the session expired',
  403: 'role not allowed, password change pending, or cross-site request',
  404: 'not found',
  409: 'conflict with the current state',
  413: 'request body too large',
  415: 'Content-Type is not application/json',
  422: 'invalid input; details carry JSON pointers',
  429: 'too many attempts; see Retry-After',
  500: 'internal or system failure',
  503: 'unavailable',
};

/** hono's `/a/:b` → OpenAPI's `/a/{b}`. */
export function openApiPath(honoPath: string): string {
  return honoPath.replace(/:([A-Za-z0-9_]+)/g, '{$1}');
}

export function operationId(r: AnyRoute): string {
  const words = r.path
    .split('/')
    .filter(Boolean)
    .map((w) => w.replace(/^:/, 'by-').replace(/[^A-Za-z0-9]+(.)?/g, (_m, ch: string | undefined) => (ch ? ch.toUpperCase() : '')));
  const name = [r.method, ...words].map((w, i) => (i === 0 ? w : w[0].toUpperCase() + w.slice(1))).join('');
  return name;
}

function clean(schema: unknown): Record<string, unknown> {
  const { $schema: _s, $id: _i, ...rest } = schema as Record<string, unknown>;
  return rest;
}

const ref = (name: string) => ({ $ref: `#/components/schemas/${name}` });

export function openApiDocument(routes: readonly AnyRoute[], info: { version: string; bodyLimit: number }): Record<string, unknown> {
  // Responses (output types) and requests (input types) are generated in one pass each, shared schemas by reference.
  const outReg = z.registry<{ id?: string }>();
  const inReg = z.registry<{ id?: string }>();
  for (const [id, schema] of Object.entries(NAMED)) outReg.add(schema, { id });
  inReg.add(Config, { id: 'Config' });
  const responseName = new Map<AnyRoute, string>();
  const requestName = new Map<AnyRoute, string>();
  for (const r of routes) {
    const named = Object.entries(NAMED).find(([, s]) => s === r.response)?.[0];
    if (!r.stream) {
      const id = named ?? `${operationId(r)}Response`;
      if (!named) outReg.add(r.response, { id });
      responseName.set(r, id);
    }
    if (r.body) {
      const id = `${operationId(r)}Request`;
      if (!inReg.has(r.body)) inReg.add(r.body, { id });
      requestName.set(r, inReg.get(r.body)!.id!);
    }
  }
  const override = (ctx: { zodSchema: unknown; jsonSchema: Record<string, unknown> }) => {
    if (ctx.zodSchema === S.ConfigDocument) {
      const description = ctx.jsonSchema.description;
      for (const k of Object.keys(ctx.jsonSchema)) delete ctx.jsonSchema[k];
      Object.assign(ctx.jsonSchema, ref('Config'), description ? { description } : {});
    }
  };
  const uri = (id: string) => `#/components/schemas/${id}`;
  const outSchemas = z.toJSONSchema(outReg, { uri, io: 'output', unrepresentable: 'any', override: override as any }).schemas;
  const inSchemas = z.toJSONSchema(inReg, { uri, io: 'input', unrepresentable: 'any', override: override as any }).schemas;
  const schemas: Record<string, unknown> = {};
  for (const [k, v] of [...Object.entries(inSchemas), ...Object.entries(outSchemas)]) schemas[k] = clean(v);

  const paths: Record<string, Record<string, unknown>> = {};
  for (const r of routes) {
    const parameters: unknown[] = [];
    for (const [where, schema] of [['path', r.params], ['query', r.query]] as const) {
      if (!schema) continue;
      const shape = (schema as z.ZodObject).shape as Record<string, z.ZodType>;
      for (const [name, field] of Object.entries(shape)) {
        const js = clean(z.toJSONSchema(field, { io: 'input', unrepresentable: 'any' }));
        parameters.push({ name, in: where, required: where === 'path' || !field.safeParse(undefined).success, schema: js, ...(js.description ? { description: js.description } : {}) });
      }
    }
    const mutating = r.method !== 'get';
    const statuses = new Set<number>([...(r.need === 'public' ? [] : [401, 403]), ...(mutating ? [400, 403, 413, 415] : []), ...(r.body || r.query || r.params ? [422] : []), ...(r.errors ?? []), 500]);
    const responses: Record<string, unknown> = {
      [String(r.status ?? 200)]: r.stream
        ? { description: r.response.description ?? 'event stream', content: { 'text/event-stream': { schema: { type: 'string', description: r.response.description } } } }
        : { description: 'success', content: { 'application/json': { schema: ref(responseName.get(r)!) } } },
    };
    for (const s of [...statuses].sort()) {
      responses[String(s)] = {
        description: STATUS_TEXT[s] ?? 'error',
        ...(s === 429 ? { headers: { 'Retry-After': { description: 'seconds until a retry can succeed', schema: { type: 'integer' } } } } : {}),
        content: { 'application/json': { schema: ref('Error') } },
      };
    }
    const path = openApiPath(r.path);
    paths[path] ??= {};
    paths[path][r.method] = {
      operationId: operationId(r),
      summary: r.summary,
      ...(r.description ? { description: r.description } : {}),
      tags: [r.tag],
      'x-rampart-access': r.need,
      ...(r.action ? { 'x-rampart-audit-action': r.action } : {}),
      security: r.need === 'public' ? [] : [{ session: [] }],
      ...(parameters.length ? { parameters } : {}),
      ...(r.body
        ? {
            requestBody: {
              required: true,
              description: `JSON, at most ${r.bodyLimit ?? info.bodyLimit} bytes`,
              content: { 'application/json': { schema: ref(requestName.get(r)!) } },
            },
          }
        : {}),
      responses,
    };
  }
  return {
    openapi: '3.1.0',
    info: {
      title: 'Rampart local API',
      version: info.version,
      description:
        'Management API of the Rampart firewall appliance. Log in with POST /auth/login (session cookie). Requests that change ' +
        'state need Content-Type: application/json and, when sent, an Origin matching the host. Errors: ' +
        '{"error": {"code", "message", "details": [{"path": JSON pointer, "message"}]}}. Access: viewer reads, operator ' +
        'also changes configuration and blocks, admin also manages users.',
    },
    servers: [{ url: API_PREFIX }],
    components: { schemas, securitySchemes: { session: { type: 'apiKey', in: 'cookie', name: SESSION_COOKIE } } },
    paths,
  };
}
