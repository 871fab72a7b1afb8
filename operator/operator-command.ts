// `captionrun operator`: runs the controller against the cluster from a kubeconfig or in-cluster config.
import { existsSync, readFileSync } from 'node:fs';
import { KubeConfig } from '@kubernetes/client-node';
import type { Command } from '../lib/cli/command.js';
import { parseCommandArgs } from '../lib/cli/command.js';
import { UsageError } from '../lib/errors.js';
import { ExitCode } from '../lib/exit-codes.js';
import { createLogger } from '../lib/telemetry/logger.js';
import { Operator } from './operator.js';

const SERVICE_ACCOUNT_NAMESPACE = '/var/run/secrets/kubernetes.io/serviceaccount/namespace';

export const operatorCommand: Command = {
  name: 'operator',
  usage: `Usage: captionrun operator [options]

Watches CaptionTrainingRuns and runs each as a gang of trainer pods behind a headless Service. When a pod
fails, is evicted or loses its node, the gang is replaced by a new attempt that resumes from the latest
valid checkpoint; failures count against spec.restartPolicy.backoffLimit, graceful stops (exit 75) do not.

Options:
  --kubeconfig FILE          kubeconfig to use (default: $KUBECONFIG, then the in-cluster service account)
  --namespace NS             watch only this namespace (default: all namespaces)
  --trainer-image IMAGE      trainer image for runs that leave spec.resources.image empty
                             (default: $CAPTIONRUN_TRAINER_IMAGE)
  --trainer-service-account SA  ServiceAccount of worker pods whose spec names none (default: the namespace's default)
  --metrics-addr HOST:PORT   serve /metrics, /healthz and /readyz here (default :8080)
  --leader-elect             only the holder of the Lease reconciles (run two replicas for failover)
  --lease-name NAME          Lease for --leader-elect (default captionrun-operator)
  --lease-namespace NS       its namespace (default: $POD_NAMESPACE, the in-cluster namespace, --namespace,
                             then default)
  --workers N                runs reconciled in parallel (default 4)
  --force-delete-after SEC   force-delete pods stuck terminating on a NotReady node this long past their
                             grace period (default 60)
  --node-lost-seconds SEC    tolerate an unreachable node this long before its pods are evicted (default 60)
  --progress-interval SEC    read each running gang's rank 0 /progress this often for status (default 10)
  --progress-max-per-second N  read at most N progress reports a second over all runs; with more runs the
                             interval grows (default 50: 500 runs every 10 s)
  -h, --help                 show this help

Exit codes: 0 stopped by SIGTERM/SIGINT, 1 lost the leader lease or failed, 2 usage error.
`,
  async run(argv) {
    const args = parseCommandArgs(this, argv, {
      kubeconfig: { type: 'string' },
      namespace: { type: 'string' },
      'trainer-image': { type: 'string' },
      'trainer-service-account': { type: 'string' },
      'metrics-addr': { type: 'string', default: ':8080' },
      'leader-elect': { type: 'boolean', default: false },
      'lease-name': { type: 'string', default: 'captionrun-operator' },
      'lease-namespace': { type: 'string' },
      workers: { type: 'string', default: '4' },
      'force-delete-after': { type: 'string', default: '60' },
      'node-lost-seconds': { type: 'string', default: '60' },
      'progress-interval': { type: 'string', default: '10' },
      'progress-max-per-second': { type: 'string', default: '50' },
    });
    if (!args) return ExitCode.Ok;
    const v = args.values;
    if (args.positionals.length > 0) throw new UsageError(`unexpected argument "${args.positionals[0]}"`, { hint: 'see `captionrun operator --help`' });
    const trainerImage = v['trainer-image'] ?? process.env.CAPTIONRUN_TRAINER_IMAGE;
    if (!trainerImage) throw new UsageError('no trainer image', { hint: 'pass --trainer-image or set CAPTIONRUN_TRAINER_IMAGE' });

    const kubeConfig = new KubeConfig();
    const kubeconfigPath = v.kubeconfig ?? process.env.KUBECONFIG;
    try {
      if (kubeconfigPath) kubeConfig.loadFromFile(kubeconfigPath);
      else kubeConfig.loadFromCluster();
    } catch (err) {
      throw new UsageError(`cannot load ${kubeconfigPath ?? 'the in-cluster config'}: ${(err as Error).message}`, { hint: 'pass --kubeconfig or set KUBECONFIG' });
    }

    const logger = createLogger({ component: 'operator' });
    const leaseNamespace = v['lease-namespace'] ?? process.env.POD_NAMESPACE ?? (existsSync(SERVICE_ACCOUNT_NAMESPACE) ? readFileSync(SERVICE_ACCOUNT_NAMESPACE, 'utf8').trim() : undefined) ?? v.namespace ?? 'default';
    const operator = new Operator({
      kubeConfig,
      namespace: v.namespace,
      metricsAddress: v['metrics-addr'],
      leaderElection: v['leader-elect'] ? { namespace: leaseNamespace, name: v['lease-name'] } : undefined,
      // The pod name in a Deployment (unique per replica, readable in the Lease); hostname_pid elsewhere.
      identity: process.env.POD_NAME,
      workers: positiveInt('--workers', v.workers),
      settings: {
        trainerImage,
        trainerServiceAccount: v['trainer-service-account'],
        clusterDomain: process.env.CAPTIONRUN_CLUSTER_DOMAIN ?? 'cluster.local',
        nodeLostTolerationSeconds: positiveInt('--node-lost-seconds', v['node-lost-seconds']),
        forceDeleteAfterMs: positiveInt('--force-delete-after', v['force-delete-after']) * 1000,
        checkpointPollIntervalMs: 30_000,
      },
      progress: {
        intervalMs: Math.max(1, positiveInt('--progress-interval', v['progress-interval'])) * 1000,
        maxPerSecond: Math.max(1, positiveInt('--progress-max-per-second', v['progress-max-per-second'])),
      },
      logger,
    });
    const signalled = new Promise<void>((resolve) => {
      process.once('SIGTERM', resolve);
      process.once('SIGINT', resolve);
    });
    await operator.start();
    const why = await Promise.race([operator.done, signalled.then(() => 'signal' as const)]);
    if (why === 'signal') {
      logger.info('shutting down');
      await operator.stop();
      return ExitCode.Ok;
    }
    return why === 'stopped' ? ExitCode.Ok : ExitCode.Failure;
  },
};

function positiveInt(flag: string, value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0) throw new UsageError(`${flag} must be a non-negative integer, got "${value}"`);
  return n;
}
