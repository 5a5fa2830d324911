import { pino, type Logger } from 'pino';

export type { Logger };

/** JSON-lines logger on stderr; services take a child with their own name. */
export function createLogger(level = process.env.RAMPART_LOG_LEVEL ?? 'info'): Logger {
  return pino({ level, base: { name: 'rampartd' } }, pino.destination(2));
}

/** A logger that discards everything, for the CLI's offline verbs and unit tests. */
export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}
