/**
 * The MSSP side of the channel: a backend MQTT client (certificate CN `mssp-backend`), signed pushes and commands,
 * and the consumer that stores every device's alerts (deduplicated by id) and acknowledges them end to end.
 */
import { createPrivateKey, randomUUID } from 'node:crypto';
import mqtt, { type MqttClient } from 'mqtt';
import { documentHash } from '../core/store.ts';
import { RampartError } from '../core/errors.ts';
import { signEnvelope, COMMAND_TYPES, type CommandType, type Envelope } from '../sync/envelope.ts';
import { BACKEND_IDENTITY, MsspHome } from './home.ts';
import { checkName } from './pki.ts';

export function connectBackend(home: MsspHome, opts: { clientId?: string; clean?: boolean; broker?: string } = {}): Promise<MqttClient> {
  const s = home.settings();
  return mqtt.connectAsync(opts.broker ?? s.broker, {
    ca: home.read('ca.crt'),
    cert: home.read('backend.crt'),
    key: home.read('backend.key'),
    rejectUnauthorized: true,
    protocolVersion: 5,
    clientId: opts.clientId ?? `${BACKEND_IDENTITY}-${randomUUID().slice(0, 8)}`,
    clean: opts.clean ?? true,
    ...(opts.clean === false ? { properties: { sessionExpiryInterval: 24 * 3600 } } : {}),
    reconnectPeriod: 1000,
    connectTimeout: 10_000,
  });
}

export const root = (tenant: string, device: string) => `rampart/v1/${checkName(tenant, 'tenant')}/${checkName(device, 'device')}/`;

function signer(home: MsspHome) {
  const s = home.settings();
  return { keyId: s.keyId, privateKey: createPrivateKey(home.read('signing.key')) };
}

export interface PushOptions {
  tenant: string;
  device: string;
  config: unknown;
  version?: number;
  expiresInSeconds?: number;
  /** Sign as if issued at this time (tests of expiry), ISO. */
  issuedAt?: string;
}

/** A signed desired-state envelope; the version defaults to the last one pushed to that device plus one. */
export function makeDesired(home: MsspHome, o: PushOptions): { envelope: Envelope; version: number; hash: string } {
  const db = home.sql;
  const row = db.prepare('SELECT pushed_version FROM devices WHERE tenant = ? AND device = ?').get(o.tenant, o.device) as { pushed_version: number } | undefined;
  const version = o.version ?? (row?.pushed_version ?? 0) + 1;
  if (!Number.isSafeInteger(version) || version < 1) throw RampartError.invalid([{ path: '/version', message: 'must be a positive integer' }]);
  const issuedAt = o.issuedAt ?? new Date().toISOString();
  const payload: Record<string, unknown> = { kind: 'desired', tenant: o.tenant, device: o.device, version, issuedAt, config: o.config };
  if (o.expiresInSeconds !== undefined) payload.expiresAt = new Date(Date.parse(issuedAt) + o.expiresInSeconds * 1000).toISOString();
  return { envelope: signEnvelope(payload, signer(home)), version, hash: documentHash(o.config) };
}

export async function push(home: MsspHome, client: MqttClient, o: PushOptions): Promise<{ version: number; hash: string }> {
  const d = makeDesired(home, o);
  await client.publishAsync(root(o.tenant, o.device) + 'desired', JSON.stringify(d.envelope), { qos: 1, retain: true });
  home.sql
    .prepare(
      `INSERT INTO devices (tenant, device, enrolled_at, pushed_version) VALUES (?, ?, ?, ?)
       ON CONFLICT(tenant, device) DO UPDATE SET pushed_version = MAX(pushed_version, excluded.pushed_version)`,
    )
    .run(o.tenant, o.device, new Date().toISOString(), d.version);
  return { version: d.version, hash: d.hash };
}

export interface CommandOptions {
  tenant: string;
  device: string;
  type: string;
  args?: Record<string, unknown>;
  id?: string;
  /** Seconds from now until the command expires (negative: already expired, for tests). */
  notAfterSeconds?: number;
}

export function makeCommand(home: MsspHome, o: CommandOptions): Envelope {
  if (!COMMAND_TYPES.includes(o.type as CommandType)) throw RampartError.invalid([{ path: '/type', message: `must be one of ${COMMAND_TYPES.join(', ')}` }]);
  const now = Date.now();
  return signEnvelope(
    {
      kind: 'cmd',
      tenant: o.tenant,
      device: o.device,
      id: o.id ?? randomUUID(),
      type: o.type,
      args: o.args ?? {},
      issuedAt: new Date(now).toISOString(),
      notAfter: new Date(now + (o.notAfterSeconds ?? 300) * 1000).toISOString(),
    },
    signer(home),
  );
}

/** Send a command and wait for its result (subscribing to cmd/result first). */
export async function command(home: MsspHome, client: MqttClient, o: CommandOptions, timeoutMs = 30_000): Promise<any> {
  const env = makeCommand(home, o);
  const id = env.payload.id as string;
  const topic = root(o.tenant, o.device);
  await client.subscribeAsync(topic + 'cmd/result', { qos: 1 });
  const result = new Promise<any>((resolve, reject) => {
    const t = setTimeout(() => {
      client.off('message', on);
      reject(new RampartError('unavailable', `no result for command ${id} within ${timeoutMs / 1000} s (is the device connected?)`));
    }, timeoutMs);
    const on = (t2: string, payload: Buffer) => {
      if (t2 !== topic + 'cmd/result') return;
      try {
        const r = JSON.parse(payload.toString());
        if (r.id !== id) return;
        clearTimeout(t);
        client.off('message', on);
        resolve(r);
      } catch {
        /* not ours */
      }
    };
    client.on('message', on);
  });
  home.sql.prepare('INSERT OR IGNORE INTO commands (id, tenant, device, type, sent_at) VALUES (?, ?, ?, ?, ?)').run(id, o.tenant, o.device, o.type, new Date().toISOString());
  await client.publishAsync(topic + 'cmd', JSON.stringify(env), { qos: 1 });
  const r = await result;
  home.sql.prepare('UPDATE commands SET result = ? WHERE id = ?').run(JSON.stringify(r), id);
  return r;
}

const TOPIC_RE = /^rampart\/v1\/([a-z][a-z0-9_-]{0,31})\/([a-z][a-z0-9_-]{0,31})\/(alerts|status|reported)$/;

export interface Consumer {
  client: MqttClient;
  /** Alerts stored (new) and batches seen since start. */
  stats: { stored: number; duplicates: number; batches: number; acks: number };
  stop(): Promise<void>;
}

/**
 * Store every device's alerts in the home database (deduplicated by tenant, device and id), then acknowledge the
 * batch with `{seq: seqTo, seqFrom}`. With `group`, subscriptions go through `$share/GROUP/` so several consumers
 * split the load; the ack names the batch's range, so it is right whichever consumer stored which batch.
 */
export async function consume(home: MsspHome, opts: { group?: string; clientId?: string; onBatch?: (n: number) => void } = {}): Promise<Consumer> {
  if (opts.group !== undefined) checkName(opts.group, 'group');
  const db = home.sql;
  const client = await connectBackend(home, { clientId: opts.clientId, clean: opts.clientId ? false : true });
  const stats = { stored: 0, duplicates: 0, batches: 0, acks: 0 };
  const insert = db.prepare('INSERT OR IGNORE INTO alerts (tenant, device, id, seq, kind, severity, at, received_at, body) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)');
  const store = db.transaction((tenant: string, device: string, alerts: any[]) => {
    let n = 0;
    const now = Date.now();
    for (const a of alerts) {
      if (!a || typeof a.id !== 'string' || !Number.isSafeInteger(a.seq)) continue;
      n += insert.run(tenant, device, a.id, a.seq, String(a.kind ?? ''), Number.isInteger(a.severity) ? a.severity : null, Number.isFinite(a.at) ? a.at : null, now, JSON.stringify(a)).changes;
    }
    return n;
  });
  const upsert = (col: 'status' | 'reported') =>
    db.prepare(
      `INSERT INTO devices (tenant, device, enrolled_at, ${col}, ${col}_at) VALUES (?, ?, ?, ?, ?)
       ON CONFLICT(tenant, device) DO UPDATE SET ${col} = excluded.${col}, ${col}_at = excluded.${col}_at`,
    );
  const setStatus = upsert('status');
  const setReported = upsert('reported');
  client.on('message', (topic, payload) => {
    const m = TOPIC_RE.exec(topic);
    if (!m) return;
    const [, tenant, device, kind] = m;
    const now = new Date().toISOString();
    if (kind === 'status') return void setStatus.run(tenant, device, now, payload.toString().slice(0, 32), now);
    if (kind === 'reported') return void setReported.run(tenant, device, now, payload.toString().slice(0, 65536), now);
    let batch: any;
    try {
      batch = JSON.parse(payload.toString());
    } catch {
      return;
    }
    if (!batch || !Array.isArray(batch.alerts) || !Number.isSafeInteger(batch.seqTo) || !Number.isSafeInteger(batch.seqFrom)) return;
    const added = store(tenant, device, batch.alerts);
    stats.stored += added;
    stats.duplicates += batch.alerts.length - added;
    stats.batches++;
    opts.onBatch?.(added);
    // Stored (committed) first, acked after.
    client.publish(`rampart/v1/${tenant}/${device}/alerts/ack`, JSON.stringify({ seq: batch.seqTo, seqFrom: batch.seqFrom }), { qos: 1 }, () => stats.acks++);
  });
  const share = (t: string) => (opts.group ? `$share/${opts.group}/${t}` : t);
  await client.subscribeAsync(
    { [share('rampart/v1/+/+/alerts')]: { qos: 1 }, 'rampart/v1/+/+/status': { qos: 1 }, 'rampart/v1/+/+/reported': { qos: 1 } },
  );
  return {
    client,
    stats,
    stop: () => client.endAsync(),
  };
}

/** Each device's status and reported state as the broker holds them now (retained messages), merged into the DB. */
export async function refreshDevices(home: MsspHome, client: MqttClient, settleMs = 300): Promise<void> {
  const db = home.sql;
  const now = new Date().toISOString();
  const set = {
    status: db.prepare(`INSERT INTO devices (tenant, device, enrolled_at, status, status_at) VALUES (?, ?, ?, ?, ?) ON CONFLICT(tenant, device) DO UPDATE SET status = excluded.status, status_at = excluded.status_at`),
    reported: db.prepare(`INSERT INTO devices (tenant, device, enrolled_at, reported, reported_at) VALUES (?, ?, ?, ?, ?) ON CONFLICT(tenant, device) DO UPDATE SET reported = excluded.reported, reported_at = excluded.reported_at`),
  };
  let last = Date.now();
  const on = (topic: string, payload: Buffer, packet: any) => {
    const m = TOPIC_RE.exec(topic);
    if (!m || m[3] === 'alerts' || !packet.retain) return;
    last = Date.now();
    set[m[3] as 'status' | 'reported'].run(m[1], m[2], now, payload.toString().slice(0, 65536), now);
  };
  client.on('message', on);
  await client.subscribeAsync({ 'rampart/v1/+/+/status': { qos: 1 }, 'rampart/v1/+/+/reported': { qos: 1 } });
  // Retained messages follow the SUBACK at once; stop when none has come for settleMs.
  while (Date.now() - last < settleMs) await new Promise((r) => setTimeout(r, 50));
  client.off('message', on);
}
