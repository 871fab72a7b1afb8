// Retries of transient store failures (5xx, throttling, timeouts, connection resets) with full-jitter
// exponential backoff inside a fixed time budget, after which the caller gets one StoreUnavailableError
// instead of an unbounded hang.
import { setTimeout as sleep } from 'node:timers/promises';
import type { Logger } from '../telemetry/logger.js';
import { StoreUnavailableError } from './errors.js';

export interface RetryOptions {
  /** Total time, from the first attempt, after which no new attempt starts. */
  deadlineMs: number;
  baseDelayMs?: number;
  maxDelayMs?: number;
  logger?: Logger;
}

const TRANSIENT_CODES = new Set([
  'ECONNRESET',
  'ECONNREFUSED',
  'ECONNABORTED',
  'ETIMEDOUT',
  'EPIPE',
  'EAI_AGAIN',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ENETDOWN',
  'UND_ERR_SOCKET',
  'ERR_STREAM_PREMATURE_CLOSE',
]);
const TRANSIENT_NAMES = new Set([
  'TimeoutError',
  'RequestTimeout',
  'RequestTimeoutException',
  'SlowDown',
  'InternalError',
  'ServiceUnavailable',
  'ThrottlingException',
  'XMinioServerNotInitialized',
]);

/** True for failures a later attempt may not see: server errors, throttling and broken connections. */
export function isTransient(err: unknown): boolean {
  for (let e: unknown = err, depth = 0; e && typeof e === 'object' && depth < 5; e = (e as { cause?: unknown }).cause, depth++) {
    const { name, code, $metadata, message } = e as { name?: string; code?: string; $metadata?: { httpStatusCode?: number }; message?: string };
    if (code && TRANSIENT_CODES.has(code)) return true;
    if (name && TRANSIENT_NAMES.has(name)) return true;
    const status = $metadata?.httpStatusCode;
    if (status !== undefined && (status >= 500 || status === 429)) return true;
    if (typeof message === 'string' && /socket hang up|ECONNRESET|ECONNREFUSED|timed? ?out/i.test(message)) return true;
  }
  return false;
}

export async function withRetry<T>(what: string, op: (attempt: number) => Promise<T>, options: RetryOptions): Promise<T> {
  const start = Date.now();
  const base = options.baseDelayMs ?? 100;
  const cap = options.maxDelayMs ?? 5000;
  for (let attempt = 1; ; attempt++) {
    try {
      return await op(attempt);
    } catch (err) {
      if (!isTransient(err)) throw err;
      const delay = Math.random() * Math.min(cap, base * 2 ** (attempt - 1));
      const elapsed = Date.now() - start;
      if (elapsed + delay > options.deadlineMs) {
        throw new StoreUnavailableError(
          `${what}: store unreachable for ${(elapsed / 1000).toFixed(1)} s after ${attempt} attempts: ${(err as Error).message}`,
          attempt,
          { cause: err },
        );
      }
      options.logger?.warn({ what, attempt, delayMs: Math.round(delay), err: (err as Error).message }, 'transient store error, retrying');
      await sleep(delay);
    }
  }
}
