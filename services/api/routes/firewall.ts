/** GET /firewall/counters and the dynamic blocks: GET/POST /blocks, DELETE /blocks/{address}. */
import { RampartError } from '../../core/errors.ts';
import type { ApiBackend } from '../app.ts';
import { Block, BlockList, BlockParam, BlockRequest, Counters, EmptyRequest, Removed } from '../schemas.ts';
import type { Router } from './define.ts';

export function firewallRoutes(r: Router, backend: ApiBackend): void {
  r.add({
    method: 'get',
    path: '/firewall/counters',
    tag: 'firewall',
    summary: 'Packets and bytes per rule id (and per port forward, SNAT rule, blocklist)',
    need: 'read',
    response: Counters,
    handler: () => backend.counters(),
  });

  r.add({
    method: 'get',
    path: '/blocks',
    tag: 'blocks',
    summary: 'Dynamic blocks in force',
    need: 'read',
    response: BlockList,
    handler: () => backend.blocks(),
  });

  r.add({
    method: 'post',
    path: '/blocks',
    tag: 'blocks',
    summary: 'Block an address or prefix (renewing an existing block sets its new TTL and reason)',
    need: 'operate',
    body: BlockRequest,
    response: Block,
    status: 201,
    action: 'block.add',
    handler: async ({ body, audit }) => {
      audit.target = body.address;
      if (body.ttlSeconds) audit.detail = `ttl ${body.ttlSeconds} s`;
      return backend.block(body, 'api');
    },
  });

  r.add({
    method: 'delete',
    path: '/blocks/:address',
    tag: 'blocks',
    summary: 'Remove a block (a prefix with its "/" written as %2F)',
    need: 'operate',
    params: BlockParam,
    body: EmptyRequest,
    response: Removed,
    action: 'block.remove',
    errors: [404],
    handler: async ({ params }) => {
      if (!(await backend.unblock(params.address))) throw new RampartError('not_found', `${params.address} is not blocked`);
      return { removed: true as const };
    },
  });
}
