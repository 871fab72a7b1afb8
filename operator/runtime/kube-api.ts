// A small JSON client for the Kubernetes API on top of KubeConfig's TLS and auth settings. The operator
// needs list, watch, get, create, delete and status replace for a handful of kinds; doing them in one
// place gives one error type (with the HTTP status the reconciler branches on) and watches whose idle
// timeout we control, which the client-node Watch does not offer.
import { request as httpRequest, type IncomingMessage, type RequestOptions } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { createInterface } from 'node:readline';
import type { KubeConfig } from '@kubernetes/client-node';

export class KubeApiError extends Error {
  constructor(
    readonly status: number,
    readonly reason: string,
    message: string,
  ) {
    super(message);
    this.name = 'KubeApiError';
  }
}

export const isNotFound = (err: unknown): boolean => err instanceof KubeApiError && err.status === 404;
export const isForbidden = (err: unknown): boolean => err instanceof KubeApiError && err.status === 403;
export const isConflict = (err: unknown): boolean => err instanceof KubeApiError && err.status === 409 && err.reason === 'Conflict';
export const isAlreadyExists = (err: unknown): boolean => err instanceof KubeApiError && err.status === 409 && err.reason === 'AlreadyExists';
/** The watch's resourceVersion is older than etcd's compaction window: list again. */
export const isGone = (err: unknown): boolean => err instanceof KubeApiError && err.status === 410;

export interface WatchEvent<T> {
  type: 'ADDED' | 'MODIFIED' | 'DELETED' | 'BOOKMARK' | 'ERROR';
  object: T;
}

export type Query = Record<string, string | number | boolean | undefined>;

export class KubeApi {
  private readonly server: string;

  private readonly requestTimeoutMs: number;
  private readonly onResponse: (verb: string, code: string) => void;

  /** `onResponse` sees every request's verb (WATCH for a watch) and HTTP code ("error" when none came back). */
  constructor(
    private readonly kubeConfig: KubeConfig,
    options: { requestTimeoutMs?: number; onResponse?: (verb: string, code: string) => void } = {},
  ) {
    this.requestTimeoutMs = options.requestTimeoutMs ?? 30_000;
    this.onResponse = options.onResponse ?? (() => undefined);
    const cluster = kubeConfig.getCurrentCluster();
    if (!cluster) throw new Error('the kubeconfig has no current cluster');
    this.server = cluster.server.replace(/\/+$/, '');
  }

  get<T>(path: string, query?: Query): Promise<T> {
    return this.json<T>('GET', path, query);
  }

  post<T>(path: string, body: unknown, query?: Query): Promise<T> {
    return this.json<T>('POST', path, query, body);
  }

  put<T>(path: string, body: unknown, query?: Query): Promise<T> {
    return this.json<T>('PUT', path, query, body);
  }

  delete<T>(path: string, body?: unknown, query?: Query): Promise<T> {
    return this.json<T>('DELETE', path, query, body);
  }

  /**
   * Streams watch events until the server ends the watch, `signal` aborts it, or no byte arrives for
   * `idleTimeoutMs` (bookmarks keep a healthy watch talking, so silence means a dead connection).
   * Resolves when the stream ends; rejects with KubeApiError on an HTTP error or an ERROR event.
   */
  async watch<T>(path: string, query: Query, onEvent: (event: WatchEvent<T>) => void, options: { signal: AbortSignal; idleTimeoutMs: number }): Promise<void> {
    const res = await this.open('GET', path, { ...query, watch: true }, undefined, options.signal, options.idleTimeoutMs);
    if (res.statusCode !== 200) throw await errorFrom(res, 'GET', path);
    await new Promise<void>((resolve, reject) => {
      let failed = false;
      const fail = (err: unknown): void => {
        if (failed) return;
        failed = true;
        res.destroy();
        reject(err);
      };
      const lines = createInterface({ input: res, crlfDelay: Infinity });
      lines.on('line', (line) => {
        if (failed || line.trim() === '') return;
        let event: WatchEvent<T>;
        try {
          event = JSON.parse(line) as WatchEvent<T>;
        } catch (err) {
          fail(new Error(`watch ${path}: unparsable event: ${(err as Error).message}`));
          return;
        }
        if (event.type === 'ERROR') {
          const status = event.object as { code?: number; reason?: string; message?: string };
          fail(new KubeApiError(status.code ?? 500, status.reason ?? 'Unknown', `watch ${path}: ${status.message ?? 'error event'}`));
          return;
        }
        try {
          onEvent(event);
        } catch (err) {
          fail(err);
        }
      });
      res.on('error', fail);
      lines.on('error', fail);
      res.on('close', () => {
        if (failed) return;
        // A server that ends a watch (timeoutSeconds) completes the chunked body; anything else is a lost connection.
        if (res.complete) resolve();
        else fail(new Error(`watch ${path}: connection closed before the server ended the watch`));
      });
    });
  }

  private async json<T>(method: string, path: string, query?: Query, body?: unknown): Promise<T> {
    const res = await this.open(method, path, query, body, undefined, this.requestTimeoutMs);
    const text = await readAll(res);
    if (res.statusCode === undefined || res.statusCode >= 300) throw parseError(res.statusCode ?? 0, text, method, path);
    return (text ? JSON.parse(text) : {}) as T;
  }

  private async open(method: string, path: string, query: Query | undefined, body: unknown, signal: AbortSignal | undefined, idleTimeoutMs: number): Promise<IncomingMessage> {
    const url = new URL(this.server + path);
    for (const [k, v] of Object.entries(query ?? {})) if (v !== undefined) url.searchParams.set(k, String(v));
    const options: RequestOptions & { headers: Record<string, string> } = { method, headers: { Accept: 'application/json' } };
    await this.kubeConfig.applyToHTTPSOptions(options);
    const payload = body === undefined ? undefined : JSON.stringify(body);
    if (payload !== undefined) {
      options.headers['Content-Type'] = 'application/json';
      // Node frames a DELETE body only when told its length; without it the apiserver never sees DeleteOptions.
      options.headers['Content-Length'] = String(Buffer.byteLength(payload));
    }
    const send = url.protocol === 'http:' ? httpRequest : httpsRequest;
    const verb = query?.watch === true ? 'WATCH' : method;
    return new Promise((resolve, reject) => {
      const req = send(url, { ...options, signal }, (res) => {
        this.onResponse(verb, String(res.statusCode ?? 'error'));
        resolve(res);
      });
      req.setTimeout(idleTimeoutMs, () => req.destroy(new Error(`${method} ${path}: no data for ${idleTimeoutMs} ms`)));
      req.on('error', (err) => {
        this.onResponse(verb, 'error');
        reject(err);
      });
      req.end(payload);
    });
  }
}

async function readAll(res: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of res) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

async function errorFrom(res: IncomingMessage, method: string, path: string): Promise<KubeApiError> {
  return parseError(res.statusCode ?? 0, await readAll(res), method, path);
}

function parseError(status: number, text: string, method: string, path: string): KubeApiError {
  let reason = 'Unknown';
  let message = text.slice(0, 500);
  try {
    const s = JSON.parse(text) as { reason?: string; message?: string };
    reason = s.reason ?? reason;
    message = s.message ?? message;
  } catch {
    // Not a Status object (a proxy's HTML error page, say): the raw text is the best message there is.
  }
  return new KubeApiError(status, reason, `${method} ${path}: ${status} ${reason}: ${message}`);
}
