/**
 * The reference MSSP tool's home directory: CA, broker and backend certificates, the config-signing key, the
 * Mosquitto ACL, and a SQLite database (devices, alerts, commands). SPEC §6.
 */
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import Database from 'better-sqlite3';
import { RampartError } from '../core/errors.ts';
import { checkHost, checkName, issue, makeCa, makeSigningKey, type Issued } from './pki.ts';

export const BACKEND_IDENTITY = 'mssp-backend';

export interface BrokerUrl {
  url: string;
  host: string;
  port: number;
}

export function parseBrokerUrl(url: string): BrokerUrl {
  const m = /^mqtts:\/\/(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]+):(\d{1,5})\/?$/.exec(url);
  if (!m || Number(m[2]) < 1 || Number(m[2]) > 65535) throw RampartError.invalid([{ path: '/broker', message: 'must be mqtts://HOST:PORT' }]);
  const host = m[1].replace(/^\[|\]$/g, '');
  checkHost(host);
  return { url, host, port: Number(m[2]) };
}

export interface HomeSettings {
  broker: string;
  keyId: string;
  createdAt: string;
}

const MIGRATIONS = [
  `CREATE TABLE devices (
     tenant TEXT NOT NULL, device TEXT NOT NULL, enrolled_at TEXT NOT NULL,
     pushed_version INTEGER NOT NULL DEFAULT 0,
     status TEXT, status_at TEXT, reported TEXT, reported_at TEXT,
     PRIMARY KEY (tenant, device)
   );
   CREATE TABLE alerts (
     tenant TEXT NOT NULL, device TEXT NOT NULL, id TEXT NOT NULL, seq INTEGER NOT NULL,
     kind TEXT, severity INTEGER, at INTEGER, received_at INTEGER NOT NULL, body TEXT NOT NULL,
     PRIMARY KEY (tenant, device, id)
   );
   CREATE INDEX alerts_received ON alerts(received_at);
   CREATE TABLE commands (
     id TEXT PRIMARY KEY, tenant TEXT NOT NULL, device TEXT NOT NULL, type TEXT NOT NULL,
     sent_at TEXT NOT NULL, result TEXT
   );`,
];

export class MsspHome {
  readonly dir: string;
  private db?: Database.Database;

  constructor(dir: string) {
    this.dir = resolve(dir);
  }

  path(name: string): string {
    return join(this.dir, name);
  }

  get initialized(): boolean {
    return existsSync(this.path('mssp.json'));
  }

  settings(): HomeSettings {
    if (!this.initialized) throw new RampartError('not_found', `${this.dir} is not an MSSP home: run \`rampart-mssp --home ${this.dir} init --broker mqtts://HOST:PORT\` first`);
    return JSON.parse(readFileSync(this.path('mssp.json'), 'utf8'));
  }

  read(name: string): string {
    return readFileSync(this.path(name), 'utf8');
  }

  private write(name: string, text: string, secret = false): void {
    writeFileSync(this.path(name), text, { mode: secret ? 0o600 : 0o644 });
    if (secret) chmodSync(this.path(name), 0o600);
  }

  /** CA, broker certificate (for the broker URL's host), backend certificate, signing key, ACL, database. */
  async init(brokerUrl: string): Promise<HomeSettings> {
    const broker = parseBrokerUrl(brokerUrl);
    if (this.initialized) throw new RampartError('conflict', `${this.dir} is already initialised`);
    mkdirSync(this.dir, { recursive: true, mode: 0o700 });
    const ca = await makeCa('Rampart MSSP CA');
    const hosts = [...new Set([broker.host, ...(broker.host === '127.0.0.1' || broker.host === 'localhost' ? ['127.0.0.1', 'localhost'] : [])])];
    const srv = await issue(ca, 'broker', { hosts, server: true });
    const backend = await issue(ca, BACKEND_IDENTITY);
    const signing = makeSigningKey();
    this.write('ca.key', ca.key, true);
    this.write('ca.crt', ca.cert);
    this.write('broker.key', srv.key, true);
    this.write('broker.crt', srv.cert);
    this.write('backend.key', backend.key, true);
    this.write('backend.crt', backend.cert);
    this.write('signing.key', signing.privateKey, true);
    this.write('signing.pub', signing.publicKey);
    this.write('mosquitto.acl', aclText());
    mkdirSync(this.path('mosquitto'), { recursive: true, mode: 0o700 });
    const settings: HomeSettings = { broker: broker.url, keyId: signing.keyId, createdAt: new Date().toISOString() };
    this.write('mssp.json', JSON.stringify(settings, null, 2) + '\n');
    this.open();
    return settings;
  }

  /** A Mosquitto configuration using this home's files (it also rewrites the ACL file it points to). */
  brokerConfig(opts: { port?: number; bind?: string; user?: string } = {}): string {
    const s = this.settings();
    const broker = parseBrokerUrl(s.broker);
    const port = opts.port ?? broker.port;
    if (!Number.isInteger(port) || port < 1 || port > 65535) throw RampartError.invalid([{ path: '/port', message: 'must be a port number' }]);
    const bind = checkHost(opts.bind ?? broker.host);
    this.write('mosquitto.acl', aclText());
    // Mosquitto started as root switches to this user before it reads the certificates (the home is 0700).
    const user = opts.user ?? (process.getuid?.() === 0 ? 'root' : undefined);
    if (user !== undefined && !/^[a-z_][a-z0-9_-]{0,31}$/.test(user)) throw RampartError.invalid([{ path: '/user', message: 'not a user name' }]);
    return [
      '# Mosquitto configuration made by rampart-mssp broker-config (SPEC §6).',
      '# Mutual TLS only: every client shows a certificate of this CA; its CN is the user name the ACL checks.',
      'per_listener_settings false',
      ...(user ? [`user ${user}`] : []),
      'allow_anonymous false',
      `listener ${port} ${bind}`,
      `cafile ${this.path('ca.crt')}`,
      `certfile ${this.path('broker.crt')}`,
      `keyfile ${this.path('broker.key')}`,
      'require_certificate true',
      'use_identity_as_username true',
      'tls_version tlsv1.2',
      `acl_file ${this.path('mosquitto.acl')}`,
      'persistence true',
      `persistence_location ${this.path('mosquitto')}/`,
      'autosave_interval 60',
      'max_queued_messages 100000',
      'max_inflight_messages 100',
      'max_keepalive 300',
      'max_packet_size 16777216',
      'log_dest stderr',
      'log_type error',
      'log_type warning',
      'log_type notice',
      '',
    ].join('\n');
  }

  /** Issue a device certificate and return the enrollment bundle (SPEC §6). */
  async enroll(tenant: string, device: string): Promise<Record<string, unknown>> {
    checkName(tenant, 'tenant');
    checkName(device, 'device');
    const s = this.settings();
    const ca: Issued = { key: this.read('ca.key'), cert: this.read('ca.crt') };
    const cert = await issue(ca, `${tenant}/${device}`);
    this.sql
      .prepare('INSERT INTO devices (tenant, device, enrolled_at) VALUES (?, ?, ?) ON CONFLICT(tenant, device) DO UPDATE SET enrolled_at = excluded.enrolled_at')
      .run(tenant, device, new Date().toISOString());
    return {
      broker: s.broker,
      tenant,
      deviceId: device,
      ca: ca.cert,
      cert: cert.cert,
      key: cert.key,
      signingKeys: [{ keyId: s.keyId, publicKey: this.read('signing.pub') }],
    };
  }

  open(): Database.Database {
    if (this.db) return this.db;
    this.settings();
    const db = new Database(this.path('mssp.db'));
    db.pragma('journal_mode = WAL');
    db.pragma('busy_timeout = 10000');
    db.pragma('synchronous = NORMAL');
    const current = db.pragma('user_version', { simple: true }) as number;
    for (let i = current; i < MIGRATIONS.length; i++) {
      db.transaction(() => {
        db.exec(MIGRATIONS[i]);
        db.pragma(`user_version = ${i + 1}`);
      })();
    }
    this.db = db;
    return db;
  }

  get sql(): Database.Database {
    return this.open();
  }

  close(): void {
    this.db?.close();
    this.db = undefined;
  }
}

/** Each device may use only its own root `rampart/v1/TENANT/DEVICE/` (its certificate's CN is `TENANT/DEVICE`). */
export function aclText(): string {
  return [
    '# The backend sees every device.',
    `user ${BACKEND_IDENTITY}`,
    'topic readwrite rampart/v1/#',
    '',
    '# Devices: %u is the certificate CN "TENANT/DEVICE"; each topic only in the direction SPEC §6 gives it.',
    'pattern write rampart/v1/%u/status',
    'pattern write rampart/v1/%u/reported',
    'pattern read rampart/v1/%u/desired',
    'pattern read rampart/v1/%u/cmd',
    'pattern write rampart/v1/%u/cmd/result',
    'pattern write rampart/v1/%u/alerts',
    'pattern read rampart/v1/%u/alerts/ack',
    'pattern write rampart/v1/%u/telemetry',
    '',
  ].join('\n');
}
