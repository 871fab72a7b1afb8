// The operator as users run it (`captionrun operator`, a separate process) killed with SIGKILL at random
// moments while it reacts to failures: a restarted operator must neither duplicate a gang nor lose or
// double-count a restart. Then two replicas with --leader-elect: exactly one acts, the other takes over.
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { after, before, test } from 'node:test';
import type { V1Pod } from '@kubernetes/client-node';
import { freePort } from '../env/minio.js';
import { REPO_ROOT } from '../env/images.js';
import { sleep, waitFor } from '../env/wait.js';
import { createRun, getRun, NS, runPods, startOperatorTestEnv, waitForGang, waitForRun, type OperatorTestEnv } from './operator-harness.js';

let t: OperatorTestEnv;
const children = new Set<ChildProcess>();

before(async () => {
  t = await startOperatorTestEnv();
});

after(async () => {
  for (const child of children) child.kill('SIGKILL');
  await t?.env.stop();
});

interface OperatorProcess {
  child: ChildProcess;
  port: number;
  identity: string;
  exited: Promise<number | null>;
}

async function startOperator(extra: string[] = []): Promise<OperatorProcess> {
  const port = await freePort();
  const child = spawn(process.execPath, [`${REPO_ROOT}bin/captionrun`, 'operator',
    '--kubeconfig', t.env.cluster.kubeconfigPath, '--namespace', NS, '--trainer-image', 'standin/train',
    '--metrics-addr', `127.0.0.1:${port}`, '--force-delete-after', '2', '--node-lost-seconds', '2', ...extra], {
    stdio: ['ignore', 'ignore', 'pipe'],
    env: { ...process.env, CAPTIONRUN_LOG_LEVEL: 'warn' },
  });
  children.add(child);
  let stderr = '';
  child.stderr?.on('data', (d: Buffer) => (stderr = (stderr + d.toString()).slice(-4000)));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => {
    children.delete(child);
    resolve(code);
  }));
  await waitFor('the operator to serve /healthz', async () => ((await fetch(`http://127.0.0.1:${port}/healthz`).catch(() => undefined))?.ok ? true : undefined), {
    timeoutMs: 30_000,
    detail: () => stderr,
  });
  return { child, port, identity: `${(await import('node:os')).hostname()}_${child.pid ?? 0}`, exited };
}

async function kill(op: OperatorProcess): Promise<void> {
  op.child.kill('SIGKILL');
  await op.exited;
}

const attemptOf = (p: V1Pod): string | undefined => p.metadata?.labels?.['captionrun.dev/attempt'];

test('SIGKILLing the operator at random points while it replaces gangs creates no duplicates and loses no restart', async () => {
  const runs = ['alpha', 'beta', 'gamma'];
  for (const name of runs) await createRun(t, name, { workers: 2, backoffLimit: 20 });
  let op = await startOperator();
  for (const name of runs) await waitForGang(t, name, 0, 2);

  // Watch the whole time for two live gangs of one run: the duplicate a confused operator would create.
  const violations: string[] = [];
  let watching = true;
  const watcher = (async () => {
    while (watching) {
      for (const name of runs) {
        const live = (await runPods(t, name)).filter((p) => !p.metadata?.deletionTimestamp && (p.status?.phase === 'Running' || p.status?.phase === 'Pending'));
        const attempts = new Set(live.map(attemptOf));
        if (attempts.size > 1) violations.push(`${name}: live pods of attempts ${[...attempts].join(', ')}`);
        if (live.length > 2) violations.push(`${name}: ${live.length} live pods`);
      }
      await sleep(150);
    }
  })();

  const kills = new Map(runs.map((r) => [r, 0]));
  const rounds = 5;
  for (let round = 0; round < rounds; round++) {
    const name = runs[round % runs.length] as string;
    const run = await waitForRun(t, name, 'to be Running', (r) => r.status?.phase === 'Running');
    const attempt = run.status?.attempt ?? 0;
    const [victim] = await waitForGang(t, name, attempt, 2);
    t.env.agent.killPod(NS, victim?.metadata?.name ?? '');
    kills.set(name, (kills.get(name) ?? 0) + 1);
    // Somewhere inside the operator's reaction: deciding, deleting the old gang, waiting out the backoff, creating the new one.
    await sleep(Math.floor(Math.random() * 2500));
    await kill(op);
    op = await startOperator();
  }
  for (const name of runs) {
    const expected = kills.get(name) ?? 0;
    const done = await waitForRun(t, name, `to run again after ${expected} failures`, (r) => r.status?.phase === 'Running' && r.status.attempt === expected, 120_000);
    assert.equal(done.status?.restarts, expected, `${name}: restarts`);
    const pods = await waitForGang(t, name, expected, 2);
    assert.deepEqual(pods.map((p) => p.metadata?.name).sort(), [`${name}-worker-0-${expected}`, `${name}-worker-1-${expected}`]);
  }
  watching = false;
  await watcher;
  assert.deepEqual(violations, []);
  await kill(op);
  for (const name of runs) await t.api.delete(`/apis/captionrun.dev/v1alpha1/namespaces/${NS}/captiontrainingruns/${name}`);
});

test('with two replicas and --leader-elect exactly one reconciles; the other takes over when it dies', async () => {
  const lease = ['--leader-elect', '--lease-name', 'captionrun-e2e', '--lease-namespace', NS];
  const a = await startOperator(lease);
  const b = await startOperator(lease);
  const holder = async (): Promise<string | undefined> =>
    (await t.api.get<{ spec: { holderIdentity?: string } }>(`/apis/coordination.k8s.io/v1/namespaces/${NS}/leases/captionrun-e2e`).catch(() => undefined))?.spec.holderIdentity ?? undefined;
  const leaderId = await waitFor('a leader', async () => (await holder()) || undefined, { timeoutMs: 30_000 });
  const [leader, standby] = leaderId === a.identity ? [a, b] : [b, a];
  assert.equal(leaderId, leader.identity);

  await createRun(t, 'ha', { workers: 1 });
  await waitForRun(t, 'ha', 'to be Running', (r) => r.status?.phase === 'Running');
  const metrics = async (op: OperatorProcess) => (await fetch(`http://127.0.0.1:${op.port}/metrics`)).text();
  // The reconcile that writes status Running records its events before it updates its metrics: wait for them.
  const running = /captionrun_run_phase\{namespace="default",run="ha",phase="Running"\} 1/;
  await waitFor('the leader to export the run as Running', async () => (running.test(await metrics(leader)) ? true : undefined), { timeoutMs: 15_000 });
  assert.doesNotMatch(await metrics(standby), /captionrun_run_phase\{/, 'the standby exports no run series');
  // client-go's rest_client_requests_total, ours: the leader watched and created the gang's pods.
  const leaderMetrics = await metrics(leader);
  assert.match(leaderMetrics, /captionrun_operator_api_requests_total\{verb="WATCH",code="200"\} [1-9]/);
  assert.match(leaderMetrics, /captionrun_operator_api_requests_total\{verb="POST",code="201"\} [1-9]/);
  const reporters = async () => {
    const list = await t.api.get<{ items: { reason: string; reportingInstance?: string }[] }>(`/api/v1/namespaces/${NS}/events`, { fieldSelector: 'involvedObject.name=ha,involvedObject.kind=CaptionTrainingRun' });
    return list.items;
  };
  assert.deepEqual([...new Set((await reporters()).map((e) => e.reportingInstance))], [leader.identity]);

  await kill(leader);
  await waitFor('the standby to take the lease', async () => ((await holder()) === standby.identity ? true : undefined), { timeoutMs: 60_000 });
  const [pod] = await waitForGang(t, 'ha', 0, 1);
  t.env.agent.killPod(NS, pod?.metadata?.name ?? '');
  const relaunched = await waitForRun(t, 'ha', 'to be relaunched by the new leader', (r) => r.status?.phase === 'Running' && r.status.attempt === 1);
  assert.equal(relaunched.status?.restarts, 1);
  const events = await reporters();
  assert.ok(events.some((e) => e.reason === 'GangCreated' && e.reportingInstance === standby.identity), JSON.stringify(events));
  standby.child.kill('SIGTERM');
  assert.equal(await standby.exited, 0, 'a graceful shutdown exits 0');
  assert.equal((await getRun(t, 'ha')).status?.phase, 'Running');
});
