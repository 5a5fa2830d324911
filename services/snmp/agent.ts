/**
 * The SNMP agent: the `net-snmp` package's Agent does the protocol (BER, community and USM security, v3 discovery
 * reports, encryption); everything else is ours. Every datagram passes services/snmp/access.ts first (no answer
 * to what it refuses), and GET / GETNEXT / GETBULK are answered from the MibView (services/snmp/mib-store.ts)
 * instead of the library's MIB tree, so a bulk walk is a series of binary searches over values the collectors keep
 * current. The engine's boots come from the store and its time runs from the agent's start, so v3 managers see
 * a proper engine (RFC 3414) across restarts.
 */
import type { Socket, RemoteInfo } from 'node:dgram';
import snmp from 'net-snmp';
import type { Logger } from '../core/log.ts';
import { parseHeader } from './ber.ts';
import { decide, type AccessPolicy } from './access.ts';
import type { MibView, Varbind } from './mib-store.ts';

import type { ListenAddress } from './access.ts';
export { newEngineId, parseListenAddress, type ListenAddress } from './access.ts';

export type AuthProtocol = 'sha' | 'sha224' | 'sha256' | 'sha384' | 'sha512';
export type PrivProtocol = 'aes' | 'aes256';

export interface UsmUser {
  name: string;
  authProtocol: AuthProtocol;
  authKey: string;
  privProtocol: PrivProtocol;
  privKey: string;
}

export interface AgentOptions {
  listen: ListenAddress[];
  engineId: Buffer;
  engineBoots: number;
  communities: AccessPolicy['communities'];
  users: UsmUser[];
  view: MibView;
  log: Logger;
}

export interface AgentStats {
  received: number;
  malformed: number;
  refused: number;
  answered: number;
  errors: number;
}

/** The library's privacy protocol for ours: AES-256 is the Blumenthal variant (Net-SNMP's `-x AES256`). */
const PRIV = { aes: 'aes', aes256: 'aes256b' } as const;

export class SnmpAgent {
  readonly stats: AgentStats = { received: 0, malformed: 0, refused: 0, answered: 0, errors: 0 };
  private agent?: any;
  private readonly startedAt = process.hrtime.bigint();
  private readonly policy: AccessPolicy;

  constructor(private readonly opts: AgentOptions) {
    this.policy = {
      communities: opts.communities,
      users: new Set(opts.users.map((u) => u.name)),
      engineId: opts.engineId,
      engineBoots: opts.engineBoots,
      engineTime: () => this.engineTime(),
    };
  }

  /** Seconds since this agent (the engine) started. */
  engineTime(): number {
    return Number((process.hrtime.bigint() - this.startedAt) / 1_000_000_000n);
  }

  /** Bind every listen address; rejects (and closes what was bound) when one cannot be bound. */
  async start(): Promise<void> {
    const log = this.opts.log;
    const agent = snmp.createAgent(
      {
        sockets: this.opts.listen.map((l) => ({ transport: l.family === 6 ? 'udp6' : 'udp4', address: l.address, port: l.port })),
        engineID: this.opts.engineId,
        accessControlModelType: snmp.AccessControlModelType.Simple,
      },
      (err: any) => {
        // The library reports refused or broken messages here; they were counted and are not worth a log line each.
        if (err) log.debug({ err: String(err?.message ?? err) }, 'snmp: message not answered');
      },
    );
    this.agent = agent;
    agent.engine.engineBoots = this.opts.engineBoots;
    Object.defineProperty(agent.engine, 'engineTime', { get: () => this.engineTime(), set: () => undefined, configurable: true });
    const auth = agent.getAuthorizer();
    const acm = auth.getAccessControlModel();
    for (const c of this.opts.communities) {
      auth.addCommunity(c.name);
      acm.setCommunityAccess(c.name, snmp.AccessLevel.ReadOnly);
    }
    for (const u of this.opts.users) {
      auth.addUser({
        name: u.name,
        level: snmp.SecurityLevel.authPriv,
        authProtocol: snmp.AuthProtocols[u.authProtocol],
        authKey: u.authKey,
        privProtocol: snmp.PrivProtocols[PRIV[u.privProtocol]],
        privKey: u.privKey,
      });
      acm.setUserAccess(u.name, snmp.AccessLevel.ReadOnly);
    }
    const view = this.opts.view;
    const respond = (socket: Socket, msg: any, rinfo: RemoteInfo, varbinds: Varbind[]) => {
      const pdu = msg.pdu.getResponsePduForRequest();
      pdu.varbinds = varbinds;
      pdu.errorStatus = 0;
      pdu.errorIndex = 0;
      agent.sendResponse(socket, rinfo, msg, pdu);
      this.stats.answered++;
    };
    agent.getRequest = (socket: Socket, msg: any, rinfo: RemoteInfo) => respond(socket, msg, rinfo, msg.pdu.varbinds.map((v: any) => view.get(String(v.oid))));
    agent.getNextRequest = (socket: Socket, msg: any, rinfo: RemoteInfo) => respond(socket, msg, rinfo, msg.pdu.varbinds.map((v: any) => view.next(String(v.oid))));
    agent.getBulkRequest = (socket: Socket, msg: any, rinfo: RemoteInfo) => {
      const oids = msg.pdu.varbinds.map((v: any) => String(v.oid));
      const max = msg.version === snmp.Version3 ? Math.min(65_000, Math.max(484, Number(msg.msgGlobalData?.msgMaxSize) || 65_000) - 200) : 65_000;
      respond(socket, msg, rinfo, view.bulk(oids, Number(msg.pdu.nonRepeaters) || 0, Number(msg.pdu.maxRepetitions) || 0, max));
    };
    // Read-only: the access check drops SET before it gets here; this is the second lock.
    agent.setRequest = () => undefined;
    const onMsg = Object.getPrototypeOf(agent).onMsg as (socket: Socket, buf: Buffer, rinfo: RemoteInfo) => void;
    const sockets: Socket[] = Object.values(agent.listener.sockets);
    await Promise.all(
      sockets.map(
        (socket) =>
          new Promise<void>((resolve, reject) => {
            socket.removeAllListeners('message');
            socket.removeAllListeners('error');
            socket.on('message', (buf: Buffer, rinfo: RemoteInfo) => this.onMessage(onMsg, socket, buf, rinfo));
            const onError = (err: Error) => reject(err);
            socket.once('error', onError);
            socket.once('listening', () => {
              socket.off('error', onError);
              socket.on('error', (err) => log.warn({ err: err.message }, 'snmp: socket error'));
              resolve();
            });
          }),
      ),
    ).catch(async (err) => {
      await this.close();
      throw err;
    });
  }

  private onMessage(onMsg: (socket: Socket, buf: Buffer, rinfo: RemoteInfo) => void, socket: Socket, buf: Buffer, rinfo: RemoteInfo): void {
    this.stats.received++;
    const header = parseHeader(buf);
    if (!header) {
      this.stats.malformed++;
      return;
    }
    const verdict = decide(header, rinfo.address, this.policy);
    if (!verdict.ok) {
      this.stats.refused++;
      this.opts.log.debug({ from: rinfo.address, reason: verdict.reason }, 'snmp: request refused');
      return;
    }
    try {
      onMsg.call(this.agent, socket, buf, rinfo);
    } catch (err) {
      this.stats.errors++;
      this.opts.log.debug({ err: String(err) }, 'snmp: request failed');
    }
  }

  /** The bound addresses (port 0 in the config → the port the system chose). */
  addresses(): { address: string; port: number }[] {
    if (!this.agent) return [];
    return Object.values(this.agent.listener.sockets as Record<string, Socket>).flatMap((s) => {
      try {
        const a = s.address();
        return [{ address: a.address, port: a.port }];
      } catch {
        return [];
      }
    });
  }

  async close(): Promise<void> {
    const agent = this.agent;
    this.agent = undefined;
    if (!agent) return;
    const sockets: Socket[] = Object.values(agent.listener.sockets ?? {});
    await Promise.all(
      sockets.map(
        (s) =>
          new Promise<void>((resolve) => {
            try {
              s.close(() => resolve());
            } catch {
              resolve();
            }
          }),
      ),
    );
  }
}
