/**
 * Load client of the snmp-bulk benchmark, run inside the namespace of the agent under test:
 * `snmp-get-client.ts PORT COMMUNITY SECONDS CONCURRENCY` sends GETs of 10 OIDs (snmp-native, v2c) to 127.0.0.1:PORT,
 * CONCURRENCY at a time, for SECONDS, and prints one JSON line: {requests, errors, seconds}.
 */
import snmpNative from 'snmp-native';

const [port, community, seconds, concurrency] = [Number(process.argv[2]), process.argv[3], Number(process.argv[4]), Number(process.argv[5] ?? 8)];
const OIDS = [
  [1, 3, 6, 1, 2, 1, 1, 3, 0],
  [1, 3, 6, 1, 2, 1, 1, 5, 0],
  [1, 3, 6, 1, 2, 1, 2, 1, 0],
  [1, 3, 6, 1, 2, 1, 2, 2, 1, 2, 1],
  [1, 3, 6, 1, 2, 1, 2, 2, 1, 8, 1],
  [1, 3, 6, 1, 2, 1, 2, 2, 1, 10, 1],
  [1, 3, 6, 1, 2, 1, 2, 2, 1, 16, 1],
  [1, 3, 6, 1, 2, 1, 31, 1, 1, 1, 1, 1],
  [1, 3, 6, 1, 2, 1, 31, 1, 1, 1, 6, 1],
  [1, 3, 6, 1, 2, 1, 31, 1, 1, 1, 10, 1],
];

const session = new snmpNative.Session({ host: '127.0.0.1', port, community, timeouts: [1000] });
let requests = 0;
let errors = 0;
const end = Date.now() + seconds * 1000;
const started = Date.now();
async function worker(): Promise<void> {
  while (Date.now() < end) {
    await new Promise<void>((res) =>
      session.getAll({ oids: OIDS }, (err: Error | null, vbs: unknown[]) => {
        if (err || !Array.isArray(vbs) || vbs.length !== OIDS.length) errors++;
        else requests++;
        res();
      }),
    );
  }
}
await Promise.all(Array.from({ length: concurrency }, () => worker()));
session.close();
process.stdout.write(JSON.stringify({ requests, errors, seconds: (Date.now() - started) / 1000 }) + '\n');
