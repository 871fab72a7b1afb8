// Structured JSON logs on stderr (stdout stays free for output that users pipe). Secrets are redacted by key
// wherever they appear, so passing a config object to a log line can never leak credentials.
import { pino, type Logger } from 'pino';
import { LLM_API_KEY_ENV } from '../api/schema.js';

export const REDACTED_KEYS = [
  'secretAccessKey',
  'accessKeyId',
  'sessionToken',
  'AWS_SECRET_ACCESS_KEY',
  'AWS_ACCESS_KEY_ID',
  'AWS_SESSION_TOKEN',
  'apiKey',
  LLM_API_KEY_ENV,
  'password',
  'token',
  'authorization',
  // HTTP header objects keep the case they were written with.
  'Authorization',
  'credentials',
];

const redactPaths = REDACTED_KEYS.flatMap((k) => [k, `*.${k}`, `*.*.${k}`, `*.*.*.${k}`]);

export function createLogger(bindings: Record<string, unknown> = {}, destination: NodeJS.WritableStream | number = 2): Logger {
  const level = process.env.CAPTIONRUN_LOG_LEVEL ?? 'info';
  const stream = typeof destination === 'number' ? pino.destination({ fd: destination, sync: true }) : destination;
  return pino(
    {
      level,
      base: { pid: process.pid, ...bindings },
      redact: { paths: redactPaths, censor: '[redacted]' },
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: { level: (label) => ({ level: label }) },
    },
    stream,
  );
}

export const logger = createLogger();
export type { Logger };
