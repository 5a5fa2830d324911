/**
 * POST /firewall/trace: which rule of the running configuration decides a new packet, and the verdict (read only;
 * the same pure tracer as `rampart trace`, services/firewall/trace.ts). The management API's port for the
 * anti-lockout rule is the port this request came in on.
 */
import { z } from 'zod';
import { RampartError } from '../../core/errors.ts';
import { parseConfig } from '../../core/validate.ts';
import { tracePacket } from '../../firewall/trace.ts';
import type { ApiBackend } from '../app.ts';
import type { Router } from './define.ts';

export const TraceRequestBody = z.strictObject({
  from: z.string().min(1).max(32).describe('zone the packet comes from, or "any"'),
  to: z.string().min(1).max(32).optional().describe('zone it goes to (forwarded packets); absent: to the appliance or by routing'),
  src: z.string().min(1).max(64).describe('source IP address'),
  dst: z.string().min(1).max(64).describe('destination IP address'),
  proto: z.enum(['tcp', 'udp', 'icmp', 'icmpv6']),
  dport: z.number().int().min(1).max(65535).optional().describe('destination port (tcp, udp)'),
  icmpType: z.string().regex(/^[a-z-]{1,32}$/).optional().describe('icmp message type; default echo-request'),
});

export const TraceResultBody = z.object({
  verdict: z.enum(['accept', 'drop', 'reject']),
  chain: z.enum(['input', 'forward']),
  decidedBy: z.enum(['rule', 'policy', 'blocklist', 'dynamic-block', 'anti-lockout', 'port-forward']),
  rule: z.string().optional(),
  path: z.string().optional().describe('JSON pointer of the deciding rule in the config'),
  dnat: z.object({ to: z.string(), port: z.number().optional() }).optional(),
  steps: z.array(z.string()).describe('what the packet met, in order'),
});

export function traceRoutes(r: Router, backend: ApiBackend): void {
  r.add({
    method: 'post',
    path: '/firewall/trace',
    tag: 'firewall',
    summary: 'Trace a packet through the running configuration: the deciding rule and the verdict (nothing changes)',
    need: 'read',
    body: TraceRequestBody,
    response: TraceResultBody,
    errors: [404],
    handler: ({ c, body }) => {
      const running = backend.running();
      if (!running) throw new RampartError('not_found', 'no configuration has been applied yet');
      const port = Number(new URL(c.req.url).port) || undefined;
      return tracePacket(parseConfig(running.document), body, { blocks: backend.blocks().map((b) => b.address), apiPort: port });
    },
  });
}
