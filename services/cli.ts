/**
 * `rampart` — the command line (SPEC §2). Verbs that change state talk to the daemon over the control socket.
 * Exit codes: 0 ok, 1 runtime failure, 2 invalid input. `--json` prints one JSON document on stdout.
 */
import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { RampartError, formatProblems } from './core/errors.ts';
import { callDaemon } from './control.ts';
import type { Role } from './api/auth.ts';

// Heavier modules (schema, compiler, YAML, logger) are imported by the verbs that need them, so the verbs that
// only talk to the daemon start fast.
const validation = () => import('./core/validate.ts');

const USAGE = `usage: rampart [--data DIR] [--netns NAME] VERB [ARGS]

  validate FILE                       check a configuration document
  compile FILE                        print the nft script apply would load
  serve [--listen HOST:PORT] [--config FILE]
                                      run the daemon (rampartd)
  apply FILE [--confirm S] [-m TEXT]  apply a configuration (reverts after S seconds unless confirmed)
  confirm | rollback [VERSION]        confirm a pending change / go back to a version
  plan FILE                           what apply would change
  history | show [VERSION] | diff A B the version journal
  status [--json]                     running version and health
  block ADDR...|- [--ttl S] [-m REASON] | unblock ADDR|--all | blocks [--json]
  stats [--json]                      live figures (interfaces, CPU, memory, conntrack) and per-rule counters
  leases [--json]                     leases of the LAN DHCP server (network.dhcpServer)
  trace --from ZONE [--to ZONE] --src IP --dst IP --proto P [--dport N]
  lab up|down [--prefix P] [--managed-network]
                                      the lab topology of network namespaces (managed: the firewall side
                                      unaddressed for Rampart, the LAN host on DHCP)
  user add NAME --role R | passwd NAME [--must-change] | del NAME | list [--json]
                                      local users, offline too (password: --password-stdin or RAMPART_NEW_PASSWORD)
  audit [--json] [--limit N] [--user U] [--since ISO]
                                      the audit log
  enroll BUNDLE                       install an MSSP enrollment bundle (DATA/sync, root only)
  alerts [--json] [--since ISO] [--severity N] [--limit N]
                                      IDS alerts and anomalies, newest first
  ids status|rules|reload [--json]    Suricata state, the merged rule set, live rule reload
  ids update [--json]                 fetch ids.sources with suricata-update, check and reload the rules

Options: --data DIR (env RAMPART_DATA, default /var/lib/rampart), --netns NAME (env RAMPART_NETNS).`;

const OPTIONS = {
  data: { type: 'string' },
  netns: { type: 'string' },
  json: { type: 'boolean' },
  listen: { type: 'string' },
  config: { type: 'string' },
  confirm: { type: 'string' },
  message: { type: 'string', short: 'm' },
  ttl: { type: 'string' },
  prefix: { type: 'string' },
  'managed-network': { type: 'boolean' },
  from: { type: 'string' },
  to: { type: 'string' },
  src: { type: 'string' },
  dst: { type: 'string' },
  proto: { type: 'string' },
  dport: { type: 'string' },
  limit: { type: 'string' },
  all: { type: 'boolean' },
  role: { type: 'string' },
  'password-stdin': { type: 'boolean' },
  'must-change': { type: 'boolean' },
  user: { type: 'string' },
  since: { type: 'string' },
  severity: { type: 'string' },
  help: { type: 'boolean', short: 'h' },
} as const;

type Opts = { [K in keyof typeof OPTIONS]?: (typeof OPTIONS)[K]['type'] extends 'boolean' ? boolean : string };

function readDocumentBytes(file: string | undefined): Buffer {
  if (!file) throw RampartError.invalid([], 'a configuration file is required');
  try {
    return file === '-' ? readFileSync(0) : readFileSync(file);
  } catch (err) {
    throw new RampartError('invalid_input', `cannot read ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
}

function readDocumentText(file: string | undefined): string {
  return readDocumentBytes(file).toString('utf8');
}

async function readDocument(file: string | undefined): Promise<unknown> {
  const text = readDocumentText(file);
  if (!file) return undefined;
  try {
    return /\.ya?ml$/i.test(file) ? (await import('yaml')).parse(text) : JSON.parse(text);
  } catch (err) {
    throw new RampartError('invalid_input', `${file} is not valid ${/\.ya?ml$/i.test(file) ? 'YAML' : 'JSON'}: ${(err as Error).message}`);
  }
}

function intArg(value: string | undefined, name: string): number | undefined {
  if (value === undefined) return undefined;
  if (!/^\d{1,9}$/.test(value)) throw RampartError.invalid([{ path: `/${name}`, message: 'must be a whole number' }]);
  return Number(value);
}

const print = (s: string) => process.stdout.write(s.endsWith('\n') ? s : s + '\n');
const printJson = (v: unknown) => print(JSON.stringify(v, null, 2));

function table(rows: string[][]): string {
  const widths = rows[0].map((_, i) => Math.max(...rows.map((r) => (r[i] ?? '').length)));
  return rows.map((r) => r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]))).join('  ')).join('\n');
}

const bytes = (n: unknown): string => {
  if (typeof n !== 'number') return '-';
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let v = n;
  let i = 0;
  while (Math.abs(v) >= 1024 && i < units.length - 1) (v /= 1024), i++;
  return `${i ? v.toFixed(1) : Math.round(v)} ${units[i]}`;
};
const rate = (n: unknown): string => (typeof n === 'number' ? (n >= 100 ? String(Math.round(n)) : n.toFixed(1)) : '-');
const bitRate = (n: unknown): string => {
  if (typeof n !== 'number') return '-';
  const bits = n * 8;
  const [v, u] = bits >= 1e9 ? [bits / 1e9, 'Gbit/s'] : bits >= 1e6 ? [bits / 1e6, 'Mbit/s'] : bits >= 1e3 ? [bits / 1e3, 'kbit/s'] : [bits, 'bit/s'];
  return `${v.toFixed(1)} ${u}`;
};

/** The live part of `rampart stats` (the daemon's `stats` answer). */
function formatLive(s: any): string {
  if (s.ts == null) return 'no telemetry sample yet';
  const lines: string[] = [`sample at ${new Date(s.ts).toISOString()}`];
  const rows = [['INTERFACE', 'STATE', 'RX', 'TX', 'RX PKT/S', 'TX PKT/S', 'ERRORS', 'DROPS']];
  for (const [dev, v] of Object.entries<any>(s.interfaces ?? {})) {
    rows.push([
      dev,
      v.up ? 'up' : 'down',
      bitRate(v.rx_bytes_rate),
      bitRate(v.tx_bytes_rate),
      rate(v.rx_packets_rate),
      rate(v.tx_packets_rate),
      String((v.rx_errors ?? 0) + (v.tx_errors ?? 0)),
      String((v.rx_dropped ?? 0) + (v.tx_dropped ?? 0)),
    ]);
  }
  lines.push(table(rows));
  const sys = s.system ?? {};
  lines.push(
    `cpu ${sys.cpu === undefined ? '-' : `${sys.cpu.toFixed(1)} %`}` +
      `  memory ${bytes(sys.mem_used_bytes)} of ${bytes(sys.mem_total_bytes)}` +
      `  load ${[sys.load1, sys.load5, sys.load15].map((l) => (typeof l === 'number' ? l.toFixed(2) : '-')).join(' ')}`,
  );
  if (sys.disk_total_bytes !== undefined) lines.push(`disk ${bytes(sys.disk_used_bytes)} of ${bytes(sys.disk_total_bytes)}`);
  lines.push(s.conntrack ? `conntrack ${s.conntrack.count} of ${s.conntrack.max}` : 'conntrack not available');
  const d = s.daemon ?? {};
  lines.push(`daemon rss ${bytes(d.rss_bytes)}  heap ${bytes(d.heap_used_bytes)}${d.loop_lag_ms !== undefined ? `  loop lag ${d.loop_lag_ms.toFixed(1)} ms` : ''}`);
  return lines.join('\n');
}

export async function main(argv: string[]): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({ args: argv, options: OPTIONS, allowPositionals: true, strict: true });
  } catch (err) {
    process.stderr.write(`rampart: ${(err as Error).message}\n${USAGE}\n`);
    return 2;
  }
  const o = parsed.values as Opts;
  const [verb, ...args] = parsed.positionals;
  if (o.help || !verb) {
    print(USAGE);
    return verb || o.help ? 0 : 2;
  }
  const dataDir = resolve(o.data ?? process.env.RAMPART_DATA ?? '/var/lib/rampart');
  const netns = o.netns ?? process.env.RAMPART_NETNS ?? undefined;
  const sock = join(dataDir, 'rampart.sock');
  const call = (method: string, params: unknown = {}) => callDaemon(sock, method, params);
  const author = process.env.SUDO_USER || process.env.USER || 'root';

  switch (verb) {
    case 'validate': {
      const r = (await validation()).validateConfig(await readDocument(args[0]));
      if (!r.ok) {
        process.stderr.write(formatProblems(r.problems) + '\n');
        return 2;
      }
      if (o.json) printJson({ ok: true });
      return 0;
    }
    case 'compile': {
      const { compileRuleset } = await import('./firewall/compile.ts');
      process.stdout.write(compileRuleset((await validation()).parseConfig(await readDocument(args[0]))).script);
      return 0;
    }
    case 'serve':
      return serve(dataDir, netns, o);
    case 'apply': {
      // A JSON file goes to the daemon as it is (an attachment after the request line, not a JSON string) and is
      // parsed there only; YAML is turned into a document here.
      const params = { message: o.message, confirmSeconds: intArg(o.confirm, 'confirm'), author, source: 'local' };
      const rec = /\.ya?ml$/i.test(args[0] ?? '')
        ? await call('apply', { ...params, document: await readDocument(args[0]) })
        : await callDaemon(sock, 'apply', params, undefined, { param: 'documentText', data: readDocumentBytes(args[0]) });
      if (o.json) printJson(rec);
      else print(String(rec.version) + (rec.state === 'pending_confirm' ? ` (pending: confirm before ${rec.confirmDeadline} or it reverts)` : ''));
      return 0;
    }
    case 'confirm': {
      const rec = await call('confirm');
      o.json ? printJson(rec) : print(`version ${rec.version} confirmed`);
      return 0;
    }
    case 'rollback': {
      const rec = await call('rollback', { version: intArg(args[0], 'version'), author, source: 'local' });
      o.json ? printJson(rec) : print(`running version ${rec.version}`);
      return 0;
    }
    case 'plan': {
      const plan = await call('plan', { document: await readDocument(args[0]) });
      if (o.json) printJson(plan);
      else {
        print(`against running version ${plan.running ?? '(none)'}: ${plan.configChanges.length} config change(s)`);
        for (const c of plan.configChanges) print(`  ${c.op.padEnd(7)} ${c.path}`);
        print(plan.rulesetDiff);
        if (plan.network?.managed) for (const line of [...plan.network.sysctls.map((x: string) => `sysctl ${x}`), ...plan.network.ops]) print(`network: ${line}`);
        if (plan.problems.length) process.stderr.write(formatProblems(plan.problems) + '\n');
      }
      return plan.problems.length ? 2 : 0;
    }
    case 'history': {
      const list = await call('history', { limit: intArg(o.limit, 'limit') });
      if (o.json) printJson(list);
      else if (!list.length) print('no versions yet');
      else print(table([['VERSION', 'TIME', 'AUTHOR', 'SOURCE', 'STATE', 'MESSAGE'], ...list.map((v: any) => [String(v.version), v.createdAt, v.author, v.source, v.state, v.message])]));
      return 0;
    }
    case 'show': {
      const rec = await call('show', { version: intArg(args[0], 'version') });
      if (o.json) printJson(rec);
      else {
        print(`# version ${rec.version} · ${rec.createdAt} · ${rec.author} · ${rec.source} · ${rec.state}${rec.message ? ' · ' + rec.message : ''}`);
        printJson(rec.document);
      }
      return 0;
    }
    case 'diff': {
      const d = await call('diff', { a: intArg(args[0], 'a'), b: intArg(args[1], 'b') });
      if (o.json) printJson(d);
      else {
        for (const c of d.configChanges) print(`${c.op.padEnd(7)} ${c.path}`);
        print(d.rulesetDiff);
      }
      return 0;
    }
    case 'status': {
      const s = await call('status');
      if (o.json) printJson(s);
      else {
        print(`version     ${s.version ?? '(none)'}${s.pending ? `  (pending confirmation until ${s.pending.confirmDeadline})` : ''}`);
        print(`firewall    ${s.firewall.state}`);
        print(`blocks      ${s.blocks.count}`);
        if (s.network) print(`network     ${s.network.state}${s.network.managed ? `, ${s.network.leases} DHCP lease(s)` : ''}`);
        for (const k of ['ids', 'sync', 'snmp']) print(`${k.padEnd(11)} ${s[k].state}`);
        if (s.sync?.tenant) print(`            sync: ${s.sync.tenant}/${s.sync.deviceId} via ${s.sync.broker}, MSSP version ${s.sync.desiredVersion}, outbox ${s.sync.outbox.rows}${s.sync.detail ? ` (${s.sync.detail})` : ''}`);
        print(`uptime      ${s.uptimeSeconds} s`);
        if (s.image) print(`image       ${s.image.version}${s.image.buildDate ? ` (built ${s.image.buildDate})` : ''}`);
      }
      return 0;
    }
    case 'block': {
      if (!args.length) throw RampartError.invalid([], 'usage: rampart block ADDR... [--ttl SECONDS] [-m REASON]  (ADDR - reads addresses from stdin, one a line)');
      const ttlSeconds = intArg(o.ttl, 'ttlSeconds');
      // A list on stdin goes to the daemon as it is (an attachment), split there.
      const fromStdin = args[0] === '-';
      const brief = !o.json && (fromStdin || args.length > 5);
      const params = { ttlSeconds, reason: o.message, source: 'local', brief };
      const recs = fromStdin
        ? await callDaemon(sock, 'block', params, undefined, { param: 'addressText', data: readFileSync(0) })
        : await call('block', { ...params, addresses: args });
      if (o.json) printJson(recs);
      else print(`blocked ${brief ? `${recs.blocked} addresses` : recs.map((r: any) => r.address).join(', ')}${o.ttl ? ` for ${o.ttl} s` : ''}`);
      return 0;
    }
    case 'unblock': {
      if (!args[0] && !o.all) throw RampartError.invalid([], 'usage: rampart unblock ADDR | --all');
      const r = await call('unblock', o.all ? { all: true } : { address: args[0] });
      if (o.json) printJson(r);
      else print(o.all ? `removed ${r.removed} block(s)` : `unblocked ${args[0]}`);
      return 0;
    }
    case 'blocks': {
      const list = await call('blocks');
      if (o.json) printJson(list);
      else if (!list.length) print('no dynamic blocks');
      else {
        const now = Date.now();
        print(table([['ADDRESS', 'EXPIRES IN', 'SOURCE', 'REASON'], ...list.map((b: any) => [b.address, b.expiresAt ? `${Math.ceil((b.expiresAt - now) / 1000)} s` : 'never', b.source, b.reason])]));
      }
      return 0;
    }
    case 'leases': {
      const list = await call('leases');
      if (o.json) printJson(list);
      else if (!list.length) print('no DHCP leases');
      else print(table([['ADDRESS', 'MAC', 'HOSTNAME', 'EXPIRES'], ...list.map((l: any) => [l.address, l.mac ?? '-', l.hostname ?? '-', l.expires ?? 'never'])]));
      return 0;
    }
    case 'stats': {
      // The live figures and, under their own keys (rules, portForwards, ...), the per-rule counters.
      const c = await call('stats');
      if (o.json) printJson(c);
      else {
        print(formatLive(c));
        if (c.ids) print(`ids ${c.ids.state}  alerts ${c.ids.alerts ?? 0}  blocked ${c.ids.autoBlocked ?? 0}${c.ids.kernelDrops !== undefined ? `  capture drops ${c.ids.kernelDrops}` : ''}${c.ids.restarts ? `  engine restarts ${c.ids.restarts}` : ''}`);
        print('');
        const rows = [['RULE', 'PACKETS', 'BYTES']];
        for (const [id, v] of Object.entries<any>(c.rules ?? {})) rows.push([id, String(v.packets), String(v.bytes)]);
        for (const [id, v] of Object.entries<any>(c.portForwards ?? {})) rows.push([`port forward ${id}`, String(v.packets), String(v.bytes)]);
        for (const [id, v] of Object.entries<any>(c.blocklists ?? {})) rows.push([`blocklist ${id}`, String(v.packets), String(v.bytes)]);
        if (c.dynamicBlocks) rows.push(['dynamic blocks', String(c.dynamicBlocks.packets), String(c.dynamicBlocks.bytes)]);
        print(table(rows));
      }
      return 0;
    }
    case 'trace': {
      if (!o.from || !o.src || !o.dst || !o.proto) throw RampartError.invalid([], 'usage: rampart trace --from ZONE [--to ZONE] --src IP --dst IP --proto P [--dport N]');
      const r = await call('trace', { from: o.from, to: o.to, src: o.src, dst: o.dst, proto: o.proto, dport: intArg(o.dport, 'dport') });
      if (o.json) printJson(r);
      else {
        for (const s of r.steps) print(`  ${s}`);
        print(`${r.verdict.toUpperCase()} by ${r.decidedBy}${r.rule ? ` ${r.rule}` : ''}${r.path ? ` (${r.path})` : ''}`);
      }
      return 0;
    }
    case 'lab': {
      const { labUp, labDown } = await import('./lab/lab.ts');
      const prefix = o.prefix ?? 'rampart';
      if (args[0] === 'up') {
        const names = await labUp(prefix, { managedNetwork: o['managed-network'] === true });
        o.json ? printJson(names) : print(`lab up: ${names.lan} ${names.fw} ${names.wan}`);
      } else if (args[0] === 'down') {
        await labDown(prefix);
        if (!o.json) print(`lab ${prefix} removed`);
      } else throw RampartError.invalid([], 'usage: rampart lab up|down [--prefix P] [--managed-network]');
      return 0;
    }
    case 'audit': {
      // Reads the store directly: works whether or not the daemon runs (WAL).
      const { AuditLog } = await import('./api/audit.ts');
      const store = await openStore(dataDir);
      try {
        let since: number | undefined;
        if (o.since !== undefined) {
          since = /^\d{1,15}$/.test(o.since) ? Number(o.since) : Date.parse(o.since);
          if (!Number.isFinite(since)) throw RampartError.invalid([{ path: '/since', message: 'must be an ISO date or epoch milliseconds' }]);
        }
        const list = new AuditLog(store).list({ limit: intArg(o.limit, 'limit') ?? 100, username: o.user, since });
        if (o.json) printJson(list);
        else if (!list.length) print('no audit entries');
        else
          print(
            table([
              ['TIME', 'USER', 'ROLE', 'SOURCE', 'ACTION', 'TARGET', 'RESULT', 'DETAIL'],
              ...list.map((e) => [new Date(e.at).toISOString(), e.username ?? '-', e.role ?? '-', e.source || '-', e.action, e.target || '-', e.result, e.detail]),
            ]),
          );
      } finally {
        store.close();
      }
      return 0;
    }
    case 'user':
      return userVerb(dataDir, args, o, author);
    case 'enroll': {
      if (!args[0]) throw RampartError.invalid([], 'usage: rampart enroll BUNDLE  (the JSON file from `rampart-mssp enroll`; - reads stdin)');
      const text = args[0] === '-' ? readFileSync(0, 'utf8') : readFileSync(args[0], 'utf8');
      let bundle: unknown;
      try {
        bundle = JSON.parse(text);
      } catch (err) {
        throw RampartError.invalid([{ path: '', message: `${args[0]}: not JSON: ${(err as Error).message}` }], 'invalid enrollment bundle');
      }
      const { installBundle } = await import('./sync/enroll.ts');
      // The running daemon installs it and reconnects; without a daemon, it is installed for the next start.
      const r = await call('enroll', { bundle, author }).catch((err) => {
        if (err instanceof RampartError && err.code === 'unavailable' && /not running/.test(err.message)) {
          const b = installBundle(dataDir, bundle);
          return { tenant: b.tenant, deviceId: b.deviceId, broker: b.broker, state: 'installed (daemon not running)' };
        }
        throw err;
      });
      if (o.json) printJson(r);
      else print(`enrolled as ${r.tenant}/${r.deviceId} with ${r.broker}: sync ${r.state}`);
      return 0;
    }
    case 'alerts': {
      const list = await call('alerts', { since: o.since, limit: o.limit, severity: o.severity });
      if (o.json) printJson(list);
      else if (!list.length) print('no alerts');
      else {
        const ep = (a: string | undefined, p: number | undefined) => (a === undefined ? '-' : p === undefined ? a : a.includes(':') ? `[${a}]:${p}` : `${a}:${p}`);
        print(
          table([
            ['TIME', 'SEV', 'KIND', 'SID', 'PROTO', 'SOURCE', 'DESTINATION', 'ACTION', 'FIREWALL', 'SIGNATURE'],
            ...list.map((a: any) => [
              new Date(a.at).toISOString(),
              String(a.severity),
              a.kind,
              a.sid === undefined ? '-' : String(a.sid),
              a.proto ?? '-',
              ep(a.src, a.sport),
              ep(a.dst, a.dport),
              a.action ?? '-',
              a.firewall ? `${a.firewall.verdict} by ${a.firewall.rule ?? a.firewall.decidedBy}` : '-',
              a.signature,
            ]),
          ]),
        );
      }
      return 0;
    }
    case 'ids': {
      const sub = args[0];
      if (sub === 'status') {
        const s = await call('idsStatus');
        if (o.json) printJson(s);
        else {
          print(`state       ${s.state}${s.mode ? ` (${s.mode}${s.interfaces?.length ? ` on ${s.interfaces.join(', ')}` : ''})` : ''}`);
          const e = s.engine ?? {};
          print(`engine      ${e.state}${e.pid ? ` pid ${e.pid}` : ''}  restarts ${e.restarts ?? 0}${e.lastExit ? `  last exit ${e.lastExit.signal ?? e.lastExit.code} at ${new Date(e.lastExit.at).toISOString()}` : ''}${e.detail ? `  (${e.detail})` : ''}`);
          print(`rules       ${s.rules?.loaded ?? '-'} loaded, ${s.rules?.failed ?? '-'} failed, ${s.rules?.configured ?? 0} enabled in the configuration`);
          if (s.lastReload) print(`last load   ${new Date(s.lastReload.at).toISOString()} ${s.lastReload.ok ? 'ok' : 'FAILED'} (${s.lastReload.action})${s.lastReload.message ? `: ${s.lastReload.message}` : ''}`);
          if (s.inline) print(`inline      NFQUEUE ${s.inline.queue} via ${s.inline.method}`);
          if (s.update) {
            const u = s.update;
            const list = u.sources.map((x: any) => `${x.name}${x.fetched ? '' : ' (not fetched)'}`).join(', ');
            print(`sources     ${list}; last update ${u.lastUpdate ? new Date(u.lastUpdate.at).toISOString() : 'never'}${u.available ? '' : ' (suricata-update is not installed)'}`);
          }
          print(`eve         ${s.eve?.alerts ?? 0} alerts read, ${s.eve?.malformed ?? 0} malformed lines skipped, ${s.eve?.rotations ?? 0} rotations`);
          print(`auto-block  ${s.autoBlock?.blocked ?? 0} blocked, ${s.autoBlock?.allowlisted ?? 0} allowlisted, ${s.autoBlock?.rateLimited ?? 0} rate-limited`);
        }
        return 0;
      }
      if (sub === 'rules') {
        const rules = await call('idsRules');
        if (o.json) printJson(rules);
        else if (!rules.length) print('no rules');
        else print(table([['SID', 'ACTION', 'STATE', 'ORIGIN', 'MESSAGE'], ...rules.map((r: any) => [String(r.sid), r.action, r.enabled ? 'enabled' : 'disabled', r.origin, r.msg])]));
        return 0;
      }
      if (sub === 'reload') {
        const r = await call('idsReload', { author });
        if (o.json) printJson(r);
        else print(`rules ${r.action}: ${r.rulesLoaded ?? '?'} loaded, ${r.rulesFailed ?? 0} failed`);
        return 0;
      }
      if (sub === 'update') {
        const r = await call('idsUpdate', { author });
        if (o.json) printJson(r);
        else {
          for (const s of r.sources) print(`source ${s.name}: ${s.rules} rules`);
          print(`rules ${r.action}: ${r.rulesLoaded ?? '?'} loaded, ${r.rulesFailed ?? 0} failed`);
        }
        return 0;
      }
      throw RampartError.invalid([], 'usage: rampart ids status|rules|reload|update [--json]');
    }
    default:
      process.stderr.write(`rampart: unknown verb "${verb}"\n${USAGE}\n`);
      return 2;
  }
}

/** Open the SQLite store directly (the offline verbs: user, audit). */
async function openStore(dataDir: string) {
  const { Store } = await import('./core/store.ts');
  const { existsSync } = await import('node:fs');
  if (!existsSync(dataDir)) throw new RampartError('system', `data directory ${dataDir} does not exist`);
  try {
    return new Store(join(dataDir, 'rampart.db')).open();
  } catch (err) {
    throw err instanceof RampartError ? err : new RampartError('system', `cannot open the store in ${dataDir}: ${(err as Error).message}`);
  }
}

/** The new password: one line from stdin with --password-stdin, else env RAMPART_NEW_PASSWORD. Never printed. */
function newPassword(o: Opts): string {
  let pw: string | undefined;
  if (o['password-stdin']) {
    let text: string;
    try {
      text = readFileSync(0, 'utf8');
    } catch (err) {
      throw new RampartError('invalid_input', `cannot read the password from stdin: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
    }
    pw = text.split('\n')[0].replace(/\r$/, '');
  } else pw = process.env.RAMPART_NEW_PASSWORD;
  if (!pw) throw RampartError.invalid([{ path: '/password', message: 'required: --password-stdin (one line on stdin) or env RAMPART_NEW_PASSWORD' }]);
  return pw;
}

/** `rampart user add|passwd|del|list`: local users straight in the store (console recovery; the daemon need not run). */
async function userVerb(dataDir: string, args: string[], o: Opts, author: string): Promise<number> {
  const usage = 'usage: rampart user add NAME --role admin|operator|viewer | passwd NAME [--must-change] | del NAME | list [--json]';
  const [sub, name] = args;
  if (!sub || !['add', 'passwd', 'del', 'list'].includes(sub) || (sub !== 'list' && !name)) throw RampartError.invalid([], usage);
  // Read the password before touching the store, so bad input leaves no trace.
  const password = sub === 'add' || sub === 'passwd' ? newPassword(o) : undefined;
  if (sub === 'add' && !o.role) throw RampartError.invalid([{ path: '/role', message: 'required: --role admin|operator|viewer' }], usage);
  const [{ Auth }, { AuditLog }, { silentLogger }] = await Promise.all([import('./api/auth.ts'), import('./api/audit.ts'), import('./core/log.ts')]);
  const store = await openStore(dataDir);
  try {
    const audit = new AuditLog(store);
    const auth = new Auth(store, silentLogger(), { audit });
    if (sub === 'list') {
      const users = auth.listUsers();
      if (o.json) printJson(users);
      else if (!users.length) print('no users');
      else print(table([['USER', 'ROLE', 'MUST CHANGE', 'CREATED'], ...users.map((u) => [u.username, u.role, u.mustChange ? 'yes' : 'no', new Date(u.createdAt).toISOString()])]));
      return 0;
    }
    const action = `user.${sub}`;
    const record = (result: 'ok' | 'failed', detail: string) => audit.record({ username: author, role: 'console', source: 'console', action, target: name, result, detail });
    try {
      if (sub === 'add') {
        const u = await auth.createUser(name, password!, o.role as Role, { mustChange: !!o['must-change'] });
        record('ok', `role ${u.role}${u.mustChange ? ', must change password' : ''}`);
        o.json ? printJson(u) : print(`user ${u.username} added (${u.role})`);
      } else if (sub === 'passwd') {
        await auth.setPassword(name, password!, { mustChange: !!o['must-change'] });
        record('ok', `password set${o['must-change'] ? ', must change at next login' : ''}; sessions ended`);
        o.json ? printJson({ ok: true }) : print(`password of ${name} changed; its sessions ended`);
      } else {
        auth.deleteUser(name);
        record('ok', '');
        o.json ? printJson({ ok: true }) : print(`user ${name} deleted`);
      }
    } catch (err) {
      const e = RampartError.from(err);
      record('failed', e.message + (e.problems.length ? ': ' + e.problems.map((p) => `${p.path} ${p.message}`).join('; ') : ''));
      throw err;
    }
    return 0;
  } finally {
    store.close();
  }
}

async function serve(dataDir: string, netns: string | undefined, o: Opts): Promise<number> {
  const { Daemon } = await import('./daemon.ts');
  const log = (await import('./core/log.ts')).createLogger();
  const seed = o.config ? await readDocument(o.config) : undefined;
  if (seed !== undefined) (await validation()).parseConfig(seed);
  const watch = Number(process.env.RAMPART_WATCH_SECONDS ?? 60);
  const telemetry = Number(process.env.RAMPART_TELEMETRY_SECONDS);
  const daemon = new Daemon({
    dataDir,
    netns,
    seed,
    log,
    listen: o.listen,
    watchIntervalMs: Number.isFinite(watch) && watch > 0 ? watch * 1000 : 60_000,
    telemetryIntervalMs: Number.isFinite(telemetry) && telemetry > 0 ? telemetry * 1000 : undefined,
  });
  let stopping = false;
  const stop = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    log.info({ signal }, 'stopping');
    await daemon.stop(10_000);
    process.exit(0);
  };
  process.on('SIGTERM', () => void stop('SIGTERM'));
  process.on('SIGINT', () => void stop('SIGINT'));
  await daemon.start();
  await new Promise(() => undefined);
  return 0;
}

const isMain = process.argv[1] && /cli\.(ts|js)$/.test(process.argv[1]);
if (isMain) {
  main(process.argv.slice(2)).then(
    (code) => {
      process.exitCode = code;
    },
    (err) => {
      const e = RampartError.from(err);
      process.stderr.write(`rampart: ${e.message}\n`);
      if (e.problems.length) process.stderr.write(formatProblems(e.problems) + '\n');
      process.exitCode = e.exitCode;
    },
  );
}
