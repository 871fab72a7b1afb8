// The cluster quickstart as a new user runs it: the spec `npm run cluster -- up` writes (the example with
// the cluster's S3 endpoint filled in), `kubectl apply`, then `kubectl get captionruns` every 2 s until it
// ends. What they must see: the stage (extracting features with a percentage, then training), a step that
// advances while the checkpoint column stays, an ETA, and columns rounded to what is worth printing.
// Two changes to the example make "between checkpoints" observable: its checkpoints every epoch come
// faster than any poll on the native backend (an epoch is about 2 s), so here they come every 100 steps,
// over more epochs; and the operator polls every 2 s instead of its default 10.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { parseDocument } from 'yaml';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createLogger } from '../../lib/telemetry/logger.js';
import { kubectl } from '../env/kubectl.js';
import { QUICKSTART_BUCKET, quickstartClusterSpec } from '../env/quickstart-spec.js';
import { sleep } from '../env/wait.js';
import { Operator } from '../../operator/operator.js';
import { startOperatorTestEnv, type OperatorTestEnv } from './operator-harness.js';

let t: OperatorTestEnv;
let operator: Operator;

before(async () => {
  t = await startOperatorTestEnv([{ name: 'gpu-node-1', gpus: 1 }]);
  await t.env.minio.createBucket(QUICKSTART_BUCKET);
  operator = new Operator({
    kubeConfig: t.env.cluster.kubeConfig(),
    metricsAddress: '127.0.0.1:0',
    settings: { trainerImage: 'captionrun/trainer:dev', clusterDomain: 'cluster.local', nodeLostTolerationSeconds: 30, forceDeleteAfterMs: 10_000, checkpointPollIntervalMs: 30_000 },
    progress: { intervalMs: 2000 },
    logger: createLogger({ component: 'operator' }),
  });
  await operator.start();
});

after(async () => {
  await operator?.stop();
  await t?.env.stop();
});

type Row = Record<string, string>;

/** `kubectl get` prints fixed-width columns, some of them empty: cut each row at the header's offsets. */
function parseTable(text: string): Row[] {
  const [header, ...lines] = text.split('\n').filter((l) => l.trim() !== '');
  if (header === undefined) return [];
  const columns = [...header.matchAll(/\S+/g)].map((m) => ({ name: m[0], start: m.index }));
  return lines.map((line) =>
    Object.fromEntries(columns.map((c, i) => [c.name, line.slice(c.start, columns[i + 1]?.start ?? line.length).trim()])),
  );
}

test('kubectl get captionruns shows the quickstart stage by stage, with steps between checkpoints', async () => {
  const file = join(mkdtempSync(join(tmpdir(), 'quickstart-')), 'quickstart-cluster.yaml');
  const spec = parseDocument(quickstartClusterSpec({ endpoint: t.env.minio.endpoint, secret: t.env.s3Secret.name }));
  spec.setIn(['spec', 'training', 'epochs'], 24);
  spec.setIn(['spec', 'checkpoint', 'everySteps'], 100);
  spec.setIn(['spec', 'checkpoint', 'everyEpoch'], false);
  writeFileSync(file, spec.toString());
  const applied = await kubectl(t.env.cluster.kubeconfigPath, ['apply', '-f', file]);
  assert.equal(applied.code, 0, applied.stderr);

  const samples: Row[] = [];
  const deadline = Date.now() + 15 * 60_000;
  for (;;) {
    const got = await kubectl(t.env.cluster.kubeconfigPath, ['get', 'captionruns']);
    assert.equal(got.code, 0, got.stderr);
    const row = parseTable(got.stdout).find((r) => r.NAME === 'quickstart');
    if (row) samples.push(row);
    if (row?.PHASE === 'Succeeded' || row?.PHASE === 'Failed') break;
    assert.ok(Date.now() < deadline, `the quickstart did not finish in 15 minutes; last rows: ${JSON.stringify(samples.slice(-3))}`);
    await sleep(2000);
  }
  const trace = samples.map((r) => `${r.PHASE} | ${r.STAGE} | step ${r.STEP} | ckpt ${r.CHECKPOINT} | eta ${r.ETA} | loss ${r.LOSS}`).join('\n');
  const final = samples.at(-1) as Row;
  assert.equal(final.PHASE, 'Succeeded', trace);
  assert.equal(final.STAGE, '', `a finished run shows no stage\n${trace}`);

  const running = samples.filter((r) => r.PHASE === 'Running');
  assert.ok(running.some((r) => /^(ExtractingFeatures|Training) \d{1,3}%$/.test(r.STAGE ?? '')), `a stage with its percentage\n${trace}`);
  assert.ok(running.some((r) => /^Training \d{1,3}%$/.test(r.STAGE ?? '') && /^(\d+s|\d+m\d\ds|\d+h\d\dm)$/.test(r.ETA ?? '')), `training with an ETA\n${trace}`);
  // The point of a live report: the step moves while the newest checkpoint is still the same one.
  const advancedBetweenCheckpoints = running.some((r, i) => {
    const prev = running[i - 1];
    return prev !== undefined && prev.CHECKPOINT === r.CHECKPOINT && Number(r.STEP) > Number(prev.STEP);
  });
  assert.ok(advancedBetweenCheckpoints, `a step that advances between checkpoints\n${trace}`);
  for (const r of samples) {
    assert.match(r.LOSS ?? '', /^(|\d+(\.\d{1,4})?)$/, `loss printed to at most 4 decimals\n${trace}`);
    assert.match(r['BLEU-4'] ?? '', /^(|\d+(\.\d{1,3})?)$/, `BLEU-4 printed to at most 3 decimals\n${trace}`);
  }
  process.stdout.write(`# kubectl get captionruns, every 2 s:\n${trace.replace(/^/gm, '# ')}\n`);
});
