/** The served TLS certificate: GET /tls (what it is), POST /tls (replace it with an uploaded one; admin). */
import { RampartError } from '../../core/errors.ts';
import { CertificateInfoSchema, CertificateUpload } from '../schemas.ts';
import type { ApiDeps } from '../app.ts';
import type { Router } from './define.ts';

export function tlsRoutes(r: Router, certificates: ApiDeps['certificates']): void {
  const none = () => new RampartError('conflict', 'the API listens on a loopback address without TLS');

  r.add({
    method: 'get',
    path: '/tls',
    tag: 'tls',
    summary: 'The certificate the API serves',
    need: 'read',
    response: CertificateInfoSchema,
    errors: [409],
    handler: () => {
      const info = certificates?.current();
      if (!info) throw none();
      return info;
    },
  });

  r.add({
    method: 'post',
    path: '/tls',
    tag: 'tls',
    summary: 'Replace the certificate with an uploaded one (PEM certificate and key); new connections use it at once',
    need: 'admin',
    body: CertificateUpload,
    response: CertificateInfoSchema,
    action: 'tls.replace',
    errors: [409, 422],
    handler: async ({ body, audit }) => {
      if (!certificates) throw none();
      const info = await certificates.replace(body.cert, body.key);
      audit.target = info.fingerprint256;
      audit.detail = info.subject;
      return info;
    },
  });
}
