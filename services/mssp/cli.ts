/**
 * `rampart-mssp --home DIR VERB` — the reference MSSP tool (SPEC §6). DIR (env RAMPART_MSSP_HOME) keeps the CA,
 * the keys and the state. Exit codes: 0 ok, 1 runtime failure, 2 invalid input.
 */
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { parse as parseYaml } from 'yaml';
import { RampartError, formatProblems } from '../core/errors.ts';
import { MsspHome } from './home.ts';
import { checkName } from './pki.ts';
import { command, connectBackend, consume, push, refreshDevices } from './backend.ts';

const USAGE = `usage: rampart-mssp [--home DIR] VERB [ARGS]

  init --broker mqtts://HOST:PORT     make the CA, broker and backend certificates, the config-signing key
  broker-config [--port N] [--bind HOST] [--user NAME]
                                      print a Mosquitto config (mutual TLS, identity as user name, per-device ACL)
  enroll --tenant T --device D        print an enrollment bundle for that device
  push --tenant T --device D FILE [--version N] [--expires SECONDS] [--wait SECONDS]
                                      sign and publish FILE as the retained desired config
  cmd --tenant T --device D TYPE [ARG] [--ttl S] [-m REASON] [--id ID] [--not-after SECONDS]
                                      sign and send a command (block ADDR, unblock ADDR, confirm, rollback [V], sync)
  consume [--group G]                 store every device's alerts (dedupe by id) and ack them; $share/G/ with --group
  alerts [--json] [--limit N]         the alerts consume stored
  devices [--json]                    each device's status and reported state

Options: --home DIR (env RAMPART_MSSP_HOME, default ./mssp).`;

const OPTIONS = {
  home: { type: 'string' },
  broker: { type: 'string' },
  port: { type: 'string' },
  bind: { type: 'string' },
  user: { type: 'string' },
  tenant: { type: 'string' },
  device: { type: 'string' },
  version: { type: 'string' },
  expires: { type: 'string' },
  wait: { type: 'string' },
  ttl: { type: 'string' },
  message: { type: 'string', short: 'm' },
  id: { type: 'string' },
  'not-after': { type: 'string' },
  timeout: { type: 'string' },
  group: { type: 'string' },
  json: { type: 'boolean' },
  limit: { type: 'string' },
  help: { type: 'boolean', short: 'h' },
} as const;

const print = (s: string) => process.stdout.write(s + '\n');

function int(value: string | undefined, name: string, min = 1): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!/^-?\d+$/.test(value) || !Number.isSafeInteger(n) || n < min) throw RampartError.invalid([{ path: `/${name}`, message: `must be an integer ≥ ${min}` }]);
  return n;
}

function need(value: string | undefined, name: string): string {
  if (!value) throw RampartError.invalid([{ path: `/${name}`, message: `--${name} is required` }]);
  return value;
}

function readConfig(file: string): unknown {
  const text = file === '-' ? readFileSync(0, 'utf8') : readFileSync(file, 'utf8');
  try {
    return /\.ya?ml$/i.test(file) ? parseYaml(text) : JSON.parse(text);
  } catch (err) {
    throw RampartError.invalid([{ path: '', message: `${file}: ${(err as Error).message}` }]);
  }
}

export async function main(argv: string[]): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({ args: argv, options: OPTIONS, allowPositionals: true, strict: true });
  } catch (err) {
    process.stderr.write(`rampart-mssp: ${(err as Error).message}\n${USAGE}\n`);
    return 2;
  }
  const o = parsed.values;
  const [verb, ...args] = parsed.positionals;
  if (o.help || !verb) {
    print(USAGE);
    return verb || o.help ? 0 : 2;
  }
  const home = new MsspHome(o.home ?? process.env.RAMPART_MSSP_HOME ?? 'mssp');
  try {
    switch (verb) {
      case 'init': {
        const s = await home.init(need(o.broker, 'broker'));
        print(`initialised ${home.dir}: broker ${s.broker}, signing key ${s.keyId}`);
        return 0;
      }
      case 'broker-config':
        process.stdout.write(home.brokerConfig({ port: int(o.port, 'port'), bind: o.bind, user: o.user }));
        return 0;
      case 'enroll': {
        const b = await home.enroll(need(o.tenant, 'tenant'), need(o.device, 'device'));
        print(JSON.stringify(b, null, 2));
        return 0;
      }
      case 'push': {
        const tenant = checkName(need(o.tenant, 'tenant'), 'tenant');
        const device = checkName(need(o.device, 'device'), 'device');
        if (!args[0]) throw RampartError.invalid([], 'usage: rampart-mssp push --tenant T --device D FILE [--version N]');
        const config = readConfig(args[0]);
        const client = await connectBackend(home);
        try {
          const r = await push(home, client, { tenant, device, config, version: int(o.version, 'version'), expiresInSeconds: int(o.expires, 'expires', -86_400) });
          print(`pushed version ${r.version} (${r.hash}) to ${tenant}/${device}`);
          const wait = int(o.wait, 'wait');
          if (wait) return await waitReported(client, tenant, device, r.version, wait * 1000);
          return 0;
        } finally {
          await client.endAsync();
        }
      }
      case 'cmd': {
        const tenant = checkName(need(o.tenant, 'tenant'), 'tenant');
        const device = checkName(need(o.device, 'device'), 'device');
        const [type, arg] = args;
        if (!type) throw RampartError.invalid([], 'usage: rampart-mssp cmd --tenant T --device D block|unblock|confirm|rollback|sync [ARG]');
        const cmdArgs: Record<string, unknown> = {};
        if (type === 'block' || type === 'unblock') cmdArgs.address = need(arg, 'address');
        if (type === 'block' && o.ttl) cmdArgs.ttlSeconds = int(o.ttl, 'ttl');
        if (type === 'block' && o.message) cmdArgs.reason = o.message;
        if (type === 'rollback' && arg) cmdArgs.version = int(arg, 'version');
        const client = await connectBackend(home);
        try {
          const r = await command(
            home,
            client,
            { tenant, device, type, args: cmdArgs, id: o.id, notAfterSeconds: int(o['not-after'], 'not-after', -86_400) },
            (int(o.timeout, 'timeout') ?? 30) * 1000,
          );
          print(JSON.stringify(r));
          return r.ok ? 0 : 1;
        } finally {
          await client.endAsync();
        }
      }
      case 'consume': {
        const c = await consume(home, { group: o.group });
        process.stderr.write(`rampart-mssp: consuming${o.group ? ` in group ${o.group}` : ''}; Ctrl-C to stop\n`);
        await new Promise<void>((resolve) => {
          for (const sig of ['SIGINT', 'SIGTERM'] as const) process.once(sig, () => resolve());
        });
        await c.stop();
        process.stderr.write(`rampart-mssp: stored ${c.stats.stored} alert(s), ${c.stats.duplicates} duplicate(s) dropped\n`);
        return 0;
      }
      case 'alerts': {
        const limit = int(o.limit, 'limit') ?? 100;
        const rows = home.sql.prepare('SELECT tenant, device, id, seq, kind, severity, at, body FROM alerts ORDER BY received_at DESC, seq DESC LIMIT ?').all(limit) as any[];
        if (o.json) print(JSON.stringify(rows.map((r) => ({ tenant: r.tenant, device: r.device, ...JSON.parse(r.body) }))));
        else for (const r of rows) print(`${new Date(r.at ?? 0).toISOString()}  ${r.tenant}/${r.device}  #${r.seq}  ${r.kind}  sev ${r.severity ?? '-'}  ${JSON.parse(r.body).signature ?? ''}`);
        return 0;
      }
      case 'devices': {
        const client = await connectBackend(home).catch(() => undefined);
        if (client) {
          await refreshDevices(home, client).finally(() => client.endAsync());
        } else process.stderr.write('rampart-mssp: broker unreachable; showing the last known state\n');
        const rows = home.sql.prepare('SELECT tenant, device, enrolled_at, pushed_version, status, status_at, reported FROM devices ORDER BY tenant, device').all() as any[];
        const out = rows.map((r) => ({ tenant: r.tenant, device: r.device, status: r.status ?? 'unknown', statusAt: r.status_at, pushedVersion: r.pushed_version, reported: r.reported ? JSON.parse(r.reported) : null }));
        if (o.json) print(JSON.stringify(out));
        else
          for (const d of out)
            print(`${`${d.tenant}/${d.device}`.padEnd(40)} ${String(d.status).padEnd(8)} pushed v${d.pushedVersion}  reported ${d.reported ? `${d.reported.state} v${d.reported.version ?? '-'}${d.reported.reason ? ` (${d.reported.reason})` : ''}` : '-'}`);
        return 0;
      }
      default:
        process.stderr.write(`rampart-mssp: unknown verb "${verb}"\n${USAGE}\n`);
        return 2;
    }
  } finally {
    home.close();
  }
}

/** Wait until the device reports on this version (applied, rejected, rolled_back...); exit 0 only for applied. */
async function waitReported(client: import('mqtt').MqttClient, tenant: string, device: string, version: number, timeoutMs: number): Promise<number> {
  const topic = `rampart/v1/${tenant}/${device}/reported`;
  const r = await new Promise<any>((resolve) => {
    const t = setTimeout(() => resolve(undefined), timeoutMs);
    client.on('message', (t2, payload) => {
      if (t2 !== topic) return;
      try {
        const rep = JSON.parse(payload.toString());
        if (rep.version === version && rep.state !== 'pending_confirm') {
          clearTimeout(t);
          resolve(rep);
        }
      } catch {
        /* ignore */
      }
    });
    void client.subscribeAsync(topic, { qos: 1 });
  });
  if (!r) {
    process.stderr.write(`rampart-mssp: no final report for version ${version} within ${timeoutMs / 1000} s\n`);
    return 1;
  }
  print(JSON.stringify(r));
  return r.state === 'applied' ? 0 : 1;
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (err) => {
    const e = RampartError.from(err);
    process.stderr.write(`rampart-mssp: ${e.message}\n${e.problems.length ? formatProblems(e.problems) + '\n' : ''}`);
    process.exit(e.exitCode);
  },
);
