/** GET /network/leases (the LAN DHCP server's leases) and GET /network/state (links, addresses, routes, DHCP clients). */
import { z } from 'zod';
import { RampartError } from '../../core/errors.ts';
import type { Router } from './define.ts';

/** What the routes read from the network service (absent: the daemon runs without it). */
export interface NetworkSource {
  leases(): Promise<{ expires: string | null; mac: string | null; address: string; hostname: string | null }[]>;
  state(): Promise<Record<string, unknown>>;
}

export const LeaseList = z
  .array(
    z.object({
      expires: z.string().nullable().describe('When the lease ends (ISO 8601); null: never'),
      mac: z.string().nullable(),
      address: z.string(),
      hostname: z.string().nullable(),
    }),
  )
  .describe('Leases handed out by the LAN DHCP server');

export const NetworkState = z
  .object({
    managed: z.boolean(),
    links: z.array(
      z.object({
        device: z.string(),
        up: z.boolean(),
        operstate: z.string().nullable(),
        mtu: z.number().nullable(),
        mac: z.string().nullable(),
        addresses: z.array(z.object({ address: z.string(), scope: z.string().nullable(), dynamic: z.boolean() })),
      }),
    ),
    routes: z.array(z.object({ destination: z.string(), gateway: z.string().nullable(), device: z.string().nullable(), protocol: z.string().nullable(), metric: z.number().nullable() })),
    dhcpClients: z.record(z.string(), z.record(z.string(), z.unknown())).describe('DHCPv4 clients by device'),
    dhcpv6Clients: z.record(z.string(), z.record(z.string(), z.unknown())).describe('DHCPv6 clients by device'),
  })
  .describe('Links, addresses and routes of the managed namespace as the kernel reports them, and the WAN DHCP clients');

export function networkRoutes(r: Router, network: NetworkSource | undefined): void {
  const source = () => {
    if (!network) throw new RampartError('unavailable', 'the network service is not running');
    return network;
  };
  r.add({
    method: 'get',
    path: '/network/leases',
    tag: 'network',
    summary: 'Leases of the LAN DHCP server',
    need: 'read',
    response: LeaseList,
    errors: [503],
    handler: () => source().leases(),
  });
  r.add({
    method: 'get',
    path: '/network/state',
    tag: 'network',
    summary: 'Links, addresses and routes of the managed namespace, and the WAN DHCP clients',
    need: 'read',
    response: NetworkState,
    errors: [503],
    handler: () => source().state(),
  });
}
