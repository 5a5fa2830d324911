/** GET /sync (the MSSP channel's state) and POST /sync/enroll (install an enrollment bundle, SPEC §6). */
import { z } from 'zod';
import { RampartError } from '../../core/errors.ts';
import type { Router } from './define.ts';

/** What these routes need from the daemon. */
export interface SyncApi {
  status(): Record<string, unknown>;
  enroll(bundle: unknown): Promise<{ tenant: string; deviceId: string; broker: string; state: string }>;
}

const EnrollRequest = z
  .object({
    bundle: z
      .object({})
      .passthrough()
      .describe('the enrollment bundle `rampart-mssp enroll` prints: broker, tenant, deviceId, ca, cert, key (PEM), signingKeys'),
  })
  .strict();

const Enrolled = z.object({ tenant: z.string(), deviceId: z.string(), broker: z.string(), state: z.string() });

export function syncRoutes(r: Router, sync: SyncApi | undefined): void {
  const need = (): SyncApi => {
    if (!sync) throw new RampartError('unavailable', 'the sync channel is not part of this server');
    return sync;
  };
  r.add({
    method: 'get',
    path: '/sync',
    tag: 'sync',
    summary: 'The MSSP channel: state, tenant and device, broker, MSSP version running, pending change, outbox depth',
    need: 'read',
    response: z.record(z.string(), z.unknown()),
    handler: () => need().status(),
  });
  r.add({
    method: 'post',
    path: '/sync/enroll',
    tag: 'sync',
    summary: 'Install an MSSP enrollment bundle (checked; stored under DATA/sync, root only) and reconnect with it',
    need: 'admin',
    body: EnrollRequest,
    response: Enrolled,
    action: 'sync.enroll',
    errors: [422, 503],
    handler: async ({ body, audit }) => {
      const res = await need().enroll(body.bundle);
      audit.target = `${res.tenant}/${res.deviceId}`;
      return res;
    },
  });
}
