// reconcile(namespace/name): read the run and its pods from the informer caches, let the policies decide
// (plan-run.ts), carry the plan out, and write the status once at the end. The cached run is used only when
// it has caught up with what this operator last wrote or read for it (its resourceVersion, client-go's
// "expectations" idea); otherwise it is read fresh, so a status just written is never acted on stale.
// Level-triggered and idempotent: children have deterministic names, creates tolerate AlreadyExists and
// deletes NotFound, and the status write is optimistic (resourceVersion), so an operator killed at any
// point and started again converges to the same state without duplicates.
import { isDeepStrictEqual } from 'node:util';
import type { V1Node, V1Pod, V1Service } from '@kubernetes/client-node';
import { GROUP, PLURAL, VERSION } from '../lib/api/schema.js';
import type { Logger } from '../lib/telemetry/logger.js';
import { PROGRESS_PATH } from '../lib/telemetry/progress-report.js';
import type { CheckpointLocator, ResumePoint } from './checkpoint-locator.js';
import { ConditionType, markCondition } from './conditions.js';
import type { EventRecorder } from './event-recorder.js';
import { buildService, buildSpecConfigMap, buildWorkerPod, TRAINER_METRICS_PORT, worldSize, type GangSettings } from './gang-builder.js';
import { attemptOf, LABEL_RUN, rankOf, runSelector, serviceName } from './gang-names.js';
import type { Informer } from './runtime/informer.js';
import { isAlreadyExists, isConflict, isNotFound, type KubeApi } from './runtime/kube-api.js';
import type { OperatorMetricSet } from './operator-metrics.js';
import { gangCreated } from './gang-created.js';
import { planRun } from './plan-run.js';
import { isTerminating } from './pod-state.js';
import type { ProgressPoller } from './progress-poller.js';
import { applyCheckpoint, applyProgressReport } from './run-progress.js';
import type { RunPlan } from './run-plan.js';
import { splitKey, type StoredRun } from './run-object.js';

export interface ReconcilerSettings extends GangSettings {
  /** Extra time a pod may stay Terminating on a NotReady node past its grace period before it is force-deleted. */
  forceDeleteAfterMs: number;
  /** How often a live run whose trainer gives no progress report has its newest checkpoint read instead. */
  checkpointPollIntervalMs: number;
}

export interface ReconcilerDeps {
  api: KubeApi;
  runs: Informer<StoredRun>;
  pods: Informer<V1Pod>;
  services: Informer<V1Service>;
  locator: CheckpointLocator;
  /** Rank 0's live progress reports, read outside reconcile. */
  progress: ProgressPoller;
  events: EventRecorder;
  metrics: OperatorMetricSet;
  logger: Logger;
  settings: ReconcilerSettings;
}

export interface ReconcileResult {
  requeueAfterMs?: number;
}

export const runPath = (namespace: string, name: string): string => `/apis/${GROUP}/${VERSION}/namespaces/${namespace}/${PLURAL}/${name}`;

export class RunReconciler {
  private readonly checkpointPolledAt = new Map<string, number>();
  /** Per run, the resourceVersion this operator last wrote or read fresh: a cached copy must show it. */
  private readonly expectedVersion = new Map<string, string>();

  constructor(private readonly deps: ReconcilerDeps) {}

  async reconcile(key: string): Promise<ReconcileResult> {
    const { api, metrics, settings } = this.deps;
    const { namespace, name } = splitKey(key);
    const log = this.deps.logger.child({ run: name, namespace });
    const run = await this.currentRun(key);
    if (run === undefined) {
      // Deleted: the garbage collector removes its children through their owner references.
      metrics.forgetRun(namespace, name);
      this.deps.progress.watch(key, undefined);
      this.checkpointPolledAt.delete(key);
      this.expectedVersion.delete(key);
      return {};
    }

    const pods = await this.podsOf(run);
    const nodes = await this.nodeReadiness(pods);
    const plan = planRun({
      run,
      pods,
      serviceExists: this.deps.services.get(`${namespace}/${serviceName(name)}`) !== undefined,
      nowMs: Date.now(),
      nodeReady: (node) => nodes.get(node),
      forceDeleteAfterMs: settings.forceDeleteAfterMs,
    });

    let failure: Error | undefined;
    try {
      await this.execute(run, plan, log);
    } catch (err) {
      failure = err as Error;
      markCondition(plan.status, { type: ConditionType.Progressing, status: 'False', reason: 'ReconcileError', message: failure.message.slice(0, 1024) }, new Date().toISOString(), run.metadata.generation);
    }
    this.deps.progress.watch(key, plan.status.phase === 'Running' ? progressUrl(pods, plan.status.attempt ?? 0) : undefined);
    await this.updateProgress(key, run, plan, log);

    let conflict = false;
    if (!isDeepStrictEqual(run.status ?? {}, plan.status)) {
      try {
        const written = await api.put<StoredRun>(`${runPath(namespace, name)}/status`, { ...run, status: plan.status });
        this.expect(key, written);
        if (plan.status.phase !== run.status?.phase) log.info({ phase: plan.status.phase, attempt: plan.status.attempt, restarts: plan.status.restarts }, 'phase changed');
      } catch (err) {
        if (!isConflict(err)) throw err;
        conflict = true;
      }
    }
    // Every decision gets its event whether or not it changed the status (a force-delete usually does not).
    // After a write conflict the decisions already acted on still get theirs; one retaken on fresh data
    // may then be recorded twice, which is better than a deleted pod nobody hears of.
    for (const event of plan.events) await this.deps.events.record(run, event);
    // Someone changed the run since we read it: decide again on fresh data (everything done so far is idempotent).
    if (conflict) return { requeueAfterMs: 0 };
    metrics.observeRun(namespace, name, plan.status.phase ?? 'Pending', plan.status.restarts ?? 0);
    if (failure) throw failure;

    let requeueAfterMs = plan.requeueAfterMs;
    const live = plan.status.phase === 'Running' || plan.status.phase === 'Pending' || plan.status.phase === 'Restarting';
    if (live) requeueAfterMs = Math.min(requeueAfterMs ?? Infinity, settings.checkpointPollIntervalMs);
    return requeueAfterMs === undefined ? {} : { requeueAfterMs };
  }

  /**
   * The run from the informer cache when the cache holds the version this operator expects (or it expects
   * none), else fresh from the apiserver; undefined when the run is gone.
   */
  private async currentRun(key: string): Promise<StoredRun | undefined> {
    const cached = this.deps.runs.get(key);
    const expected = this.expectedVersion.get(key);
    if (cached !== undefined && (expected === undefined || cached.metadata.resourceVersion === expected)) return cached;
    const { namespace, name } = splitKey(key);
    try {
      const fresh = await this.deps.api.get<StoredRun>(runPath(namespace, name));
      this.expect(key, fresh);
      return fresh;
    } catch (err) {
      if (isNotFound(err)) return undefined;
      throw err;
    }
  }

  private expect(key: string, run: StoredRun): void {
    const version = run.metadata.resourceVersion;
    if (version === undefined) this.expectedVersion.delete(key);
    else this.expectedVersion.set(key, version);
  }

  /**
   * The run's pods from the cache; from the apiserver when the cache misses pods of a launched gang, since
   * a missing pod relaunches the gang and a cache that has not seen our own creates yet must not cause that.
   */
  private async podsOf(run: StoredRun): Promise<V1Pod[]> {
    const { namespace, name } = run.metadata;
    const cached = this.deps.pods.list().filter((p) => p.metadata?.namespace === namespace && p.metadata.labels?.[LABEL_RUN] === name);
    const attempt = run.status?.attempt ?? 0;
    const launched = run.status?.workers?.total ?? 0;
    const current = cached.filter((p) => attemptOf(p.metadata?.labels) === attempt).length;
    if (launched === 0 || current >= run.spec.resources.workers) return cached;
    const live = await this.deps.api.get<{ items: V1Pod[] }>(`/api/v1/namespaces/${namespace}/pods`, { labelSelector: runSelector(name) });
    return live.items;
  }

  private async nodeReadiness(pods: readonly V1Pod[]): Promise<Map<string, boolean | undefined>> {
    const nodes = new Map<string, boolean | undefined>();
    for (const pod of pods) {
      const node = pod.spec?.nodeName;
      if (!isTerminating(pod) || node === undefined || nodes.has(node)) continue;
      try {
        const n = await this.deps.api.get<V1Node>(`/api/v1/nodes/${node}`);
        nodes.set(node, n.status?.conditions?.find((c) => c.type === 'Ready')?.status === 'True');
      } catch (err) {
        nodes.set(node, isNotFound(err) ? false : undefined);
      }
    }
    return nodes;
  }

  private async execute(run: StoredRun, plan: RunPlan, log: Logger): Promise<void> {
    const { api } = this.deps;
    const { namespace } = run.metadata;
    if (plan.createService) await ignore(api.post(`/api/v1/namespaces/${namespace}/services`, buildService(run)), isAlreadyExists);
    for (const pod of plan.forceDeletePods) {
      log.warn({ pod: pod.metadata?.name, node: pod.spec?.nodeName }, 'force-deleting pod stuck on a NotReady node');
      await this.deletePod(pod, 0);
    }
    for (const pod of plan.deletePods) await this.deletePod(pod, undefined);
    if (plan.launch) await this.launch(run, plan, log);
  }

  private async launch(run: StoredRun, plan: RunPlan, log: Logger): Promise<void> {
    const launch = plan.launch;
    if (!launch) return;
    const { namespace } = run.metadata;
    const { status } = plan;
    let resumeFrom = launch.resumeFrom?.uri;
    let unseen: string | undefined;
    if (!launch.resumeFrom) {
      let point: ResumePoint;
      try {
        point = await this.deps.locator.latestValid(run);
      } catch (err) {
        throw new Error(`cannot read the checkpoint store to find the resume point: ${(err as Error).message}`, { cause: err });
      }
      resumeFrom = point.checkpoint?.uri;
      unseen = point.unreadable;
      if (point.checkpoint) applyCheckpoint(status, point.checkpoint);
    }
    if (!launch.resumeFrom) await this.writeSpec(run);
    for (const rank of launch.ranks) {
      const pod = buildWorkerPod(run, rank, launch.attempt, resumeFrom, this.deps.settings);
      await ignore(this.deps.api.post(`/api/v1/namespaces/${namespace}/pods`, pod), isAlreadyExists);
    }
    const gang = { attempt: launch.attempt, workers: run.spec.resources.workers, worldSize: worldSize(run.spec.resources), resumeFrom, unseen };
    plan.events.push(gangCreated(status, gang, new Date().toISOString(), run.metadata.generation));
    log.info({ attempt: gang.attempt, workers: gang.workers, worldSize: gang.worldSize, resumeFrom }, 'gang created');
  }

  /** The spec the new gang reads; replaced for each new attempt, so the attempt runs the spec it was launched with. */
  private async writeSpec(run: StoredRun): Promise<void> {
    const configMap = buildSpecConfigMap(run);
    const path = `/api/v1/namespaces/${run.metadata.namespace}/configmaps`;
    try {
      await this.deps.api.post(path, configMap);
    } catch (err) {
      if (!isAlreadyExists(err)) throw err;
      await this.deps.api.put(`${path}/${configMap.metadata?.name ?? ''}`, configMap);
    }
  }

  private async deletePod(pod: V1Pod, gracePeriodSeconds: number | undefined): Promise<void> {
    const { namespace, name, uid } = pod.metadata ?? {};
    if (!namespace || !name) return;
    const body = { apiVersion: 'v1', kind: 'DeleteOptions', preconditions: { uid }, ...(gracePeriodSeconds === undefined ? {} : { gracePeriodSeconds }) };
    // NotFound: already gone. Conflict: the uid precondition failed, so it is another pod by now.
    await ignore(this.deps.api.delete(`/api/v1/namespaces/${namespace}/pods/${name}`, body), (err) => isNotFound(err) || isConflict(err));
  }

  /**
   * Rank 0's live report while the gang runs; otherwise (between gangs, at the end, or from a trainer that
   * serves none) the newest checkpoint, read at most every checkpointPollIntervalMs per run. Best effort.
   */
  private async updateProgress(key: string, run: StoredRun, plan: RunPlan, log: Logger): Promise<void> {
    const { status } = plan;
    const report = status.phase === 'Running' ? this.deps.progress.latest(key) : undefined;
    if (report) {
      const resumed = applyProgressReport(status, report);
      if (resumed) plan.events.push(resumed);
      return;
    }
    // A stage and ETA are only true of a gang that is running and reporting.
    delete status.progress;
    const phaseChanged = status.phase !== run.status?.phase;
    if (status.phase === 'Failed' && !phaseChanged) return;
    const now = Date.now();
    const last = this.checkpointPolledAt.get(key);
    if (!phaseChanged && last !== undefined && now - last < this.deps.settings.checkpointPollIntervalMs) return;
    this.checkpointPolledAt.set(key, now);
    try {
      const newest = await this.deps.locator.newest(run);
      if (newest) applyCheckpoint(status, newest);
    } catch (err) {
      log.warn({ err: (err as Error).message }, 'cannot read progress from the checkpoint store');
    }
  }
}

/** Where rank 0 of the current attempt serves its report: worker 0's first training process. */
function progressUrl(pods: readonly V1Pod[], attempt: number): string | undefined {
  const pod = pods.find((p) => attemptOf(p.metadata?.labels) === attempt && rankOf(p.metadata?.labels) === 0);
  const ip = pod?.status?.podIP;
  if (pod?.status?.phase !== 'Running' || !ip || isTerminating(pod)) return undefined;
  return `http://${ip.includes(':') ? `[${ip}]` : ip}:${TRAINER_METRICS_PORT}${PROGRESS_PATH}`;
}

async function ignore(op: Promise<unknown>, harmless: (err: unknown) => boolean): Promise<void> {
  try {
    await op;
  } catch (err) {
    if (!harmless(err)) throw err;
  }
}
