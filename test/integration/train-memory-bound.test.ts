// A trainer whose training set's float32 feature maps are larger than the memory it is given trains to the
// end: features are read per batch from the cache, never all held.
//
// The limit is a memory cgroup (what a pod's memory limit is), not --max-old-space-size: feature maps are
// Float32Arrays, whose bytes live outside the V8 heap, and tensors on the wasm backend live in wasm memory,
// so a heap limit bounds neither; the cgroup counts every page the process has resident. (RLIMIT_DATA, tried
// first, counts address space: under Node 24 each worker thread's V8 code-range reservation alone fails it.)
// 20,000 synthetic images at 139 px give InceptionV3 3x3x2048 maps: 72 KiB each as float32, 1.2 GiB for the
// 18,000 training images alone, more than the limit before anything else; the trainer that held them all
// (main before streaming) cannot finish under it, the streaming trainer holds a few batches.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmdirSync, writeFileSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { lazyEncoder } from '../../trainer-image/model/encoder.js';
import { FeatureCache } from '../../trainer-image/features/feature-cache.js';
import { fillSyntheticCache } from '../feature-cache-fill.js';
import { CLI, REPO, type LogLine } from './train-helpers.js';

const IMAGES = 20_000;
const SYNTHETIC = { images: IMAGES, seed: 8, imageSize: 32, maxObjects: 1 };
const DATA_LIMIT = 1200 * 2 ** 20;

const root = await mkdtemp(join(tmpdir(), 'train-memory-bound-'));
after(() => rm(root, { recursive: true, force: true }));

test(`trains to the end on ${IMAGES} images whose float32 maps exceed the process's memory limit`, { timeout: 900_000 }, async () => {
  const { shape } = await lazyEncoder({ encoder: 'inceptionv3', encoderWeights: 'pretrained', inputSize: 139 });
  const trainBytes = IMAGES * 0.9 * shape.regions * shape.channels * 4;
  assert.ok(trainBytes > DATA_LIMIT, `the training maps (${trainBytes} bytes as float32) exceed the limit (${DATA_LIMIT})`);
  const cacheDir = join(root, 'features');
  await fillSyntheticCache(new FeatureCache(cacheDir), shape, SYNTHETIC);
  const spec = join(root, 'run.yaml');
  await writeFile(
    spec,
    `apiVersion: captionrun.dev/v1alpha1
kind: CaptionTrainingRun
metadata:
  name: memory-bound
spec:
  dataset:
    format: synthetic
    synthetic: { images: ${SYNTHETIC.images}, seed: ${SYNTHETIC.seed}, imageSize: ${SYNTHETIC.imageSize}, maxObjects: ${SYNTHETIC.maxObjects} }
  model: { decoder: gru, attention: bahdanau, embeddingDim: 8, hiddenDim: 8, attentionDim: 8, dropout: 0 }
  training: { epochs: 1, batchSize: 256, learningRate: 0.01, maxCaptionLength: 8, lrSchedule: { type: constant }, validationImages: 20, seed: 1 }
  checkpoint:
    store: { local: { path: ${join(root, 'checkpoints')} } }
    everySteps: 1000
  evaluation: { beamSize: 1, report: { enabled: false } }
`,
  );
  const first = await trainer(spec, cacheDir, 'never');
  assert.equal(first.code, 0, `the trainer failed under the limit:\n${first.stderr.slice(-3000)}`);
  assert.ok(first.lines.some((l) => /training features: read per batch/.test(l.msg ?? '')), 'the trainer said it streams the features');
  assert.ok(first.lines.some((l) => l.msg === 'training finished'), 'training finished');
  assert.ok(!first.lines.some((l) => /^encoder .* loaded$/.test(l.msg ?? '')), 'every feature was cached: the encoder was never built');

  // A relaunch (here of the finished run, which resumes its last checkpoint) reads the dataset's index
  // instead of reading and digesting 20,000 images; "data ready N s after launch" says how long it took.
  const again = await trainer(spec, cacheDir, 'auto');
  assert.equal(again.code, 0, again.stderr.slice(-3000));
  assert.ok(again.lines.some((l) => /^feature index found/.test(l.msg ?? '')), 'the relaunch used the index');
  assert.ok(!again.lines.some((l) => /^features: \d+\/\d+ images/.test(l.msg ?? '')), 'the relaunch read no image');
  assert.ok(again.lines.some((l) => /^data ready .* after launch$/.test(l.msg ?? '')));
});

/** A memory cgroup (v2, else v1) limited to `bytes` without swap; needs root, as the test cluster does. */
function memoryCgroup(bytes: number): { dir: string; remove: () => void } {
  const name = `captionrun-memory-bound-${process.pid}`;
  const v2 = '/sys/fs/cgroup';
  const v1 = '/sys/fs/cgroup/memory';
  let dir: string;
  if (existsSync(`${v2}/cgroup.controllers`) && readFileSync(`${v2}/cgroup.subtree_control`, 'utf8').includes('memory')) {
    dir = join(v2, name);
    mkdirSync(dir);
    writeFileSync(join(dir, 'memory.max'), String(bytes));
    if (existsSync(join(dir, 'memory.swap.max'))) writeFileSync(join(dir, 'memory.swap.max'), '0');
  } else if (existsSync(join(v1, 'cgroup.procs'))) {
    dir = join(v1, name);
    mkdirSync(dir);
    writeFileSync(join(dir, 'memory.limit_in_bytes'), String(bytes));
    if (existsSync(join(dir, 'memory.memsw.limit_in_bytes'))) writeFileSync(join(dir, 'memory.memsw.limit_in_bytes'), String(bytes));
  } else {
    throw new Error('this test needs a writable cgroup memory controller (v2 with memory enabled, or v1 at /sys/fs/cgroup/memory), as root');
  }
  return { dir, remove: () => rmdirSync(dir) };
}

/** `captionrun trainer` in a memory cgroup limited to DATA_LIMIT, one process. */
async function trainer(spec: string, cacheDir: string, resume: 'auto' | 'never'): Promise<{ code: number | null; lines: LogLine[]; stderr: string }> {
  const cgroup = memoryCgroup(DATA_LIMIT);
  // The shell joins the cgroup, then becomes the trainer: every page the trainer touches is counted.
  const child = spawn('sh', ['-c', 'echo $$ > "$0/cgroup.procs" && exec "$@"', cgroup.dir, process.execPath, CLI, 'trainer', '--resume', resume, '--output', join(root, 'out'), spec], {
    cwd: REPO,
    env: { ...process.env, CAPTIONRUN_CACHE: root, CAPTIONRUN_FEATURE_CACHE: cacheDir, CAPTIONRUN_BACKEND: 'wasm' },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  // An OOM kill by the cgroup is SIGKILL: reported as 137, like a container's.
  const code = await new Promise<number | null>((resolve) => child.once('exit', (c, signal) => resolve(c ?? (signal === 'SIGKILL' ? 137 : null))));
  cgroup.remove();
  const lines = stderr.split('\n').flatMap((text) => (text.startsWith('{') ? [JSON.parse(text) as LogLine] : []));
  return { code, lines, stderr };
}
