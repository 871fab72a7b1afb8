// Lease-based leader election (coordination.k8s.io/v1), client-go's algorithm: the holder renews the
// Lease every retryPeriod; a candidate takes it over once it has seen no renewal for leaseDuration, timed
// on its own clock (never by comparing timestamps written by another machine). A leader that cannot renew
// within renewDeadline stops leading before anyone else may start, so two replicas never act at once.
import type { Logger } from '../../lib/telemetry/logger.js';
import { sleep } from './informer.js';
import { isConflict, isNotFound, type KubeApi } from './kube-api.js';

export interface LeaderElectionOptions {
  namespace: string;
  name: string;
  identity: string;
  leaseDurationMs?: number;
  renewDeadlineMs?: number;
  retryPeriodMs?: number;
  logger: Logger;
}

interface Lease {
  apiVersion: 'coordination.k8s.io/v1';
  kind: 'Lease';
  metadata: { name: string; namespace: string; resourceVersion?: string };
  spec: {
    holderIdentity?: string | null;
    leaseDurationSeconds?: number;
    acquireTime?: string | null;
    renewTime?: string | null;
    leaseTransitions?: number;
  };
}

export class LeaderElector {
  private readonly leaseDurationMs: number;
  private readonly renewDeadlineMs: number;
  private readonly retryPeriodMs: number;
  private observed: { record: string; atMs: number } | undefined;
  private leading = false;
  private readonly abort = new AbortController();

  constructor(private readonly api: KubeApi, private readonly options: LeaderElectionOptions) {
    this.leaseDurationMs = options.leaseDurationMs ?? 15_000;
    this.renewDeadlineMs = options.renewDeadlineMs ?? 10_000;
    this.retryPeriodMs = options.retryPeriodMs ?? 2_000;
  }

  isLeader(): boolean {
    return this.leading;
  }

  /**
   * Campaigns until elected, calls `onStartedLeading`, then renews until renewal fails past the deadline
   * or stop() is called. Resolves when leadership ends (or never began).
   */
  async run(onStartedLeading: () => void): Promise<void> {
    const log = this.options.logger;
    while (!this.abort.signal.aborted && !(await this.tryAcquireOrRenew())) await sleep(this.retryPeriodMs, this.abort.signal);
    if (this.abort.signal.aborted) return;
    this.leading = true;
    log.info({ lease: this.options.name, identity: this.options.identity }, 'became leader');
    onStartedLeading();
    let lastRenew = Date.now();
    while (!this.abort.signal.aborted) {
      await sleep(this.retryPeriodMs, this.abort.signal);
      if (this.abort.signal.aborted) break;
      if (await this.tryAcquireOrRenew()) {
        lastRenew = Date.now();
      } else if (Date.now() - lastRenew > this.renewDeadlineMs) {
        log.error({ lease: this.options.name }, 'could not renew the leader lease in time; stopping');
        break;
      }
    }
    this.leading = false;
  }

  /** Stops campaigning or leading; a leader hands the lease over at once instead of letting it expire. */
  async stop(): Promise<void> {
    this.abort.abort();
    if (!this.leading) return;
    this.leading = false;
    try {
      const lease = await this.api.get<Lease>(this.leasePath());
      if (lease.spec.holderIdentity !== this.options.identity) return;
      lease.spec = { ...lease.spec, holderIdentity: null, leaseDurationSeconds: 1, renewTime: microTime(new Date()) };
      await this.api.put(this.leasePath(), lease);
    } catch (err) {
      this.options.logger.warn({ err: (err as Error).message }, 'could not release the leader lease; it expires on its own');
    }
  }

  private leasePath(name = this.options.name): string {
    return `/apis/coordination.k8s.io/v1/namespaces/${this.options.namespace}/leases${name ? `/${name}` : ''}`;
  }

  private async tryAcquireOrRenew(): Promise<boolean> {
    const { identity, namespace, name } = this.options;
    const now = microTime(new Date());
    const durationSeconds = Math.ceil(this.leaseDurationMs / 1000);
    try {
      let lease: Lease;
      try {
        lease = await this.api.get<Lease>(this.leasePath());
      } catch (err) {
        if (!isNotFound(err)) throw err;
        await this.api.post(this.leasePath(''), {
          apiVersion: 'coordination.k8s.io/v1',
          kind: 'Lease',
          metadata: { name, namespace },
          spec: { holderIdentity: identity, leaseDurationSeconds: durationSeconds, acquireTime: now, renewTime: now, leaseTransitions: 0 },
        } satisfies Lease);
        return true;
      }
      const spec = lease.spec;
      const record = `${spec.holderIdentity ?? ''}|${spec.renewTime ?? ''}|${spec.leaseDurationSeconds ?? ''}`;
      if (this.observed?.record !== record) this.observed = { record, atMs: Date.now() };
      const holder = spec.holderIdentity ?? '';
      const durationMs = (spec.leaseDurationSeconds ?? durationSeconds) * 1000;
      if (holder !== '' && holder !== identity && Date.now() < (this.observed.atMs + durationMs)) return false;
      const takingOver = holder !== identity;
      lease.spec = {
        holderIdentity: identity,
        leaseDurationSeconds: durationSeconds,
        acquireTime: takingOver ? now : spec.acquireTime ?? now,
        renewTime: now,
        leaseTransitions: (spec.leaseTransitions ?? 0) + (takingOver && holder !== '' ? 1 : 0),
      };
      await this.api.put<Lease>(this.leasePath(), lease);
      return true;
    } catch (err) {
      if (!isConflict(err)) this.options.logger.warn({ lease: name, err: (err as Error).message }, 'leader lease request failed');
      return false;
    }
  }
}

/** metav1.MicroTime: RFC 3339 with exactly six fractional digits; the apiserver rejects milliseconds. */
function microTime(d: Date): string {
  return d.toISOString().replace(/Z$/, '000Z');
}
