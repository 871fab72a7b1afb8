import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { CheckpointReader, checkpointName, openStore, type CheckpointStore } from '../../lib/checkpoint/index.js';
import { startMinio, type MinioServer } from '../env/minio.js';
import { rng } from './checkpoint-corruptions.js';
import { crashSnapshot } from './checkpoint-crash-data.js';

const child = fileURLToPath(new URL('./checkpoint-crash-child.ts', import.meta.url));
const KILLS = 3;
let minio: MinioServer;
let dir: string;

before(async () => {
  minio = await startMinio();
  await minio.createBucket('crash');
  dir = mkdtempSync(join(tmpdir(), 'captionrun-crash-'));
});

after(async () => {
  await minio.stop();
  rmSync(dir, { recursive: true, force: true });
});

interface ChildRun {
  committed: boolean;
  killed: boolean;
  saveMs: number;
}

/** Runs the child for one step; with killAfterMs, SIGKILLs it that long after it starts saving. */
function runChild(uri: string, step: number, killAfterMs?: number): Promise<ChildRun> {
  const env = { ...process.env, CRASH_S3_ENDPOINT: minio.endpoint, AWS_ACCESS_KEY_ID: minio.accessKeyId, AWS_SECRET_ACCESS_KEY: minio.secretAccessKey, CAPTIONRUN_LOG_LEVEL: 'warn' };
  const proc = spawn(process.execPath, ['--import', 'tsx', child, uri, String(step)], { env, stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  let savingAt = 0;
  let killed = false;
  proc.stdout.on('data', (d: Buffer) => {
    out += d.toString();
    if (!savingAt && out.includes('saving\n')) {
      savingAt = performance.now();
      if (killAfterMs !== undefined) setTimeout(() => (killed = proc.kill('SIGKILL')), killAfterMs);
    }
  });
  return new Promise((resolve) =>
    proc.on('exit', () => resolve({ committed: out.includes('committed\n'), killed, saveMs: performance.now() - savingAt })),
  );
}

async function assertLoadsExact(store: CheckpointStore, step: number): Promise<void> {
  const ckpt = await new CheckpointReader(store).load(checkpointName(step));
  const expected = crashSnapshot(step);
  for (const f of expected.files) assert.ok(Buffer.from(f.data).equals(ckpt.files.get(f.name) ?? new Uint8Array()), `${checkpointName(step)}/${f.name} is bit-exact`);
  assert.deepEqual(ckpt.state, expected.state);
}

for (const kind of ['filesystem', 'minio'] as const) {
  test(`kill -9 of a writer at random points of a save (${kind}): the partial checkpoint never loads, the previous one does`, async () => {
    const uri = kind === 'minio' ? 's3://crash/ns/run' : join(dir, 'ns', 'run');
    const store = openStore(uri, { s3: { endpoint: minio.endpoint, accessKeyId: minio.accessKeyId, secretAccessKey: minio.secretAccessKey } });
    const first = await runChild(uri, 1);
    assert.ok(first.committed);
    let lastCommitted = 1;
    let interrupted = 0;
    const random = rng(kind === 'minio' ? 11 : 12);
    for (let i = 0; i < KILLS; i++) {
      const step = lastCommitted + 1;
      const run = await runChild(uri, step, random() * first.saveMs * 1.2);
      const { checkpoint, invalid } = await new CheckpointReader(store).loadLatest();
      assert.ok(checkpoint, 'a checkpoint loads');
      if (run.committed) assert.equal(checkpoint.manifest.step, step, 'a save reported committed is the latest');
      else assert.ok([step, lastCommitted].includes(checkpoint.manifest.step));
      if (checkpoint.manifest.step !== step) {
        interrupted++;
        assert.ok(invalid.every((c) => c.step === step && c.reason === 'manifest-missing'), JSON.stringify(invalid));
      }
      await assertLoadsExact(store, checkpoint.manifest.step);
      await assertLoadsExact(store, lastCommitted);
      lastCommitted = checkpoint.manifest.step;
    }
    // At least one kill landed before the commit, or this test proved nothing.
    assert.ok(interrupted > 0, 'no kill interrupted a save');
    await store.close();
  });
}
