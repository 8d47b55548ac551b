import pino, { type Logger } from 'pino';

export type { Logger };

/**
 * The instance's log: one JSON object per line on stderr (pino), which a log
 * collector parses as is and a person reads through `pino-pretty` or `jq`.
 */
export function createLogger(name: string, level: string = process.env.LIVEMIG_LOG ?? 'info'): Logger {
  return pino({ name, level, base: { pid: process.pid } }, pino.destination({ fd: 2, sync: true }));
}
