/**
 * Interface attributes IF-MIB serves beside the counters (which come from telemetry): type, MTU, MAC, flags,
 * operational state, kernel alias, and the link speed. Read in the firewall's namespace: `ip -d -j link show`
 * each refresh, the speeds from /sys only when the set of interfaces changes.
 */
import { run } from '../host/exec.ts';

export interface LinkInfo {
  ifindex: number;
  name: string;
  flags: string[];
  mtu: number;
  operstate?: string;
  linkType?: string;
  mac: Buffer;
  alias: string;
}

export function parseLinks(json: string): LinkInfo[] {
  const list = json.trim() ? (JSON.parse(json) as any[]) : [];
  return list
    .filter((l) => Number.isInteger(l?.ifindex) && typeof l?.ifname === 'string')
    .map((l) => {
      const hex = typeof l.address === 'string' && /^([0-9a-f]{2}:)*[0-9a-f]{2}$/i.test(l.address) ? l.address.split(':') : [];
      return {
        ifindex: l.ifindex,
        name: l.ifname,
        flags: Array.isArray(l.flags) ? l.flags.map(String) : [],
        mtu: Number.isInteger(l.mtu) ? l.mtu : 0,
        operstate: typeof l.operstate === 'string' ? l.operstate : undefined,
        linkType: typeof l.link_type === 'string' ? l.link_type : undefined,
        mac: Buffer.from(hex.map((h: string) => parseInt(h, 16))),
        alias: typeof l.ifalias === 'string' ? l.ifalias : '',
      };
    });
}

/** `grep -H '' /sys/class/net/X/speed ...` output → bits per second by interface name (unknown speeds left out). */
export function parseSpeeds(out: string): Map<string, number> {
  const speeds = new Map<string, number>();
  for (const line of out.split('\n')) {
    const m = /^\/sys\/class\/net\/([^/]+)\/speed:(-?\d+)$/.exec(line.trim());
    if (m && Number(m[2]) > 0) speeds.set(m[1], Number(m[2]) * 1_000_000);
  }
  return speeds;
}

const NAME_RE = /^[A-Za-z0-9][A-Za-z0-9_.@-]{0,15}$/;

export class LinkReader {
  private speeds = new Map<string, number>();
  private speedKey = '';

  constructor(private readonly netns?: string) {}

  async read(): Promise<{ links: LinkInfo[]; speeds: Map<string, number> }> {
    const ns = this.netns ? ['-n', this.netns] : [];
    const res = await run('ip', [...ns, '-d', '-j', 'link', 'show'], { timeoutMs: 10_000 });
    const links = parseLinks(res.stdout);
    const key = links.map((l) => `${l.ifindex}:${l.name}`).join(',');
    if (key !== this.speedKey) {
      this.speedKey = key;
      const paths = links.filter((l) => NAME_RE.test(l.name)).map((l) => `/sys/class/net/${l.name}/speed`);
      const r = paths.length ? await run('grep', ['-s', '-H', '', ...paths], { netns: this.netns, allowFailure: true, timeoutMs: 10_000 }) : undefined;
      this.speeds = parseSpeeds(r?.stdout ?? '');
    }
    return { links, speeds: this.speeds };
  }
}
