// A shared informer that keeps working: list, then watch from the list's resourceVersion with bookmarks;
// a 410 (compacted) relists, and every other error (dropped connection, stalled stream, apiserver restart)
// watches again after a backoff. The client-node informer stops on some errors and can stall silently,
// which for an operator means runs nobody reconciles.
import type { Logger } from '../../lib/telemetry/logger.js';
import { isGone, KubeApiError, type KubeApi, type WatchEvent } from './kube-api.js';

export interface KubeObject {
  metadata?: { name?: string; namespace?: string; resourceVersion?: string; labels?: Record<string, string> };
}

export type InformerEvent = 'add' | 'update' | 'delete';
export type InformerHandler<T> = (event: InformerEvent, object: T) => void;

export interface InformerOptions {
  /** Collection path, e.g. /api/v1/pods or /apis/captionrun.dev/v1alpha1/namespaces/ml/captiontrainingruns. */
  path: string;
  labelSelector?: string;
  logger: Logger;
  /** No byte for this long means the watch is dead; bookmarks arrive about once a minute on a live one. */
  idleTimeoutMs?: number;
  minBackoffMs?: number;
  maxBackoffMs?: number;
}

interface ListResponse<T> {
  metadata?: { resourceVersion?: string; continue?: string };
  items: T[];
}

export function objectKey(o: KubeObject): string {
  return `${o.metadata?.namespace ?? ''}/${o.metadata?.name ?? ''}`;
}

export class Informer<T extends KubeObject> {
  private readonly store = new Map<string, T>();
  private readonly handlers: InformerHandler<T>[] = [];
  private resourceVersion: string | undefined;
  private synced = false;
  private syncWaiters: (() => void)[] = [];
  private readonly abort = new AbortController();
  private loop: Promise<void> | undefined;
  /** Restarts of the watch since start, for tests and logs. */
  restarts = 0;

  constructor(private readonly api: KubeApi, private readonly options: InformerOptions) {}

  on(handler: InformerHandler<T>): void {
    this.handlers.push(handler);
  }

  start(): void {
    this.loop ??= this.run();
  }

  async stop(): Promise<void> {
    this.abort.abort();
    await this.loop;
  }

  hasSynced(): boolean {
    return this.synced;
  }

  waitForSync(): Promise<void> {
    if (this.synced) return Promise.resolve();
    return new Promise((resolve) => this.syncWaiters.push(resolve));
  }

  list(): T[] {
    return [...this.store.values()];
  }

  get(key: string): T | undefined {
    return this.store.get(key);
  }

  private async run(): Promise<void> {
    const log = this.options.logger;
    let failures = 0;
    while (!this.abort.signal.aborted) {
      try {
        if (this.resourceVersion === undefined) await this.relist();
        await this.api.watch<T>(this.options.path, {
          labelSelector: this.options.labelSelector,
          resourceVersion: this.resourceVersion,
          allowWatchBookmarks: true,
          // Spread reconnects out so that many operators never re-watch in step.
          timeoutSeconds: 240 + Math.floor(Math.random() * 120),
        }, (e) => this.apply(e), { signal: this.abort.signal, idleTimeoutMs: this.options.idleTimeoutMs ?? 90_000 });
        failures = 0;
      } catch (err) {
        if (this.abort.signal.aborted) break;
        this.restarts++;
        if (isGone(err)) {
          log.info({ path: this.options.path }, 'watch resourceVersion too old; relisting');
          this.resourceVersion = undefined;
          continue;
        }
        failures++;
        const delay = Math.min((this.options.minBackoffMs ?? 200) * 2 ** (failures - 1), this.options.maxBackoffMs ?? 30_000);
        log.warn({ path: this.options.path, err: (err as Error).message, status: err instanceof KubeApiError ? err.status : undefined, retryInMs: delay }, 'watch failed; restarting');
        await sleep(delay * (0.8 + Math.random() * 0.4), this.abort.signal);
      }
    }
  }

  private async relist(): Promise<void> {
    const seen = new Map<string, T>();
    let cont: string | undefined;
    let resourceVersion: string | undefined;
    do {
      const page = await this.api.get<ListResponse<T>>(this.options.path, { labelSelector: this.options.labelSelector, limit: 500, continue: cont });
      for (const item of page.items) seen.set(objectKey(item), item);
      cont = page.metadata?.continue || undefined;
      resourceVersion = page.metadata?.resourceVersion;
    } while (cont);
    for (const [key, old] of this.store) {
      if (!seen.has(key)) {
        this.store.delete(key);
        this.emit('delete', old);
      }
    }
    for (const [key, item] of seen) {
      const old = this.store.get(key);
      this.store.set(key, item);
      if (!old) this.emit('add', item);
      else if (old.metadata?.resourceVersion !== item.metadata?.resourceVersion) this.emit('update', item);
    }
    this.resourceVersion = resourceVersion;
    if (!this.synced) {
      this.synced = true;
      for (const resolve of this.syncWaiters.splice(0)) resolve();
    }
  }

  private apply(event: WatchEvent<T>): void {
    const rv = event.object.metadata?.resourceVersion;
    if (event.type === 'BOOKMARK') {
      this.resourceVersion = rv;
      return;
    }
    const key = objectKey(event.object);
    if (event.type === 'DELETED') {
      this.store.delete(key);
      this.emit('delete', event.object);
    } else {
      const existed = this.store.has(key);
      this.store.set(key, event.object);
      this.emit(existed ? 'update' : 'add', event.object);
    }
    this.resourceVersion = rv;
  }

  private emit(event: InformerEvent, object: T): void {
    for (const handler of this.handlers) handler(event, object);
  }
}

export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted) return resolve();
    const timer = setTimeout(done, ms);
    function done(): void {
      clearTimeout(timer);
      signal?.removeEventListener('abort', done);
      resolve();
    }
    signal?.addEventListener('abort', done, { once: true });
  });
}
