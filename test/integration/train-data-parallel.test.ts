// `captionrun train --nproc 2`: two trainer processes under the local supervisor and the per-pod launcher,
// rendezvousing on loopback, exactly as a 2-rank gang. Equivalence with one process on the doubled batch,
// and the gang's fault contract: SIGKILL of one rank brings the other down at once, the supervisor
// relaunches both from rank 0's checkpoint, and the run ends with the weights of an undisturbed one.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startCli, tinySpec, type LogLine } from './train-helpers.js';

const root = mkdtempSync(join(tmpdir(), 'captionrun-train-ddp-'));
const env = { CAPTIONRUN_FEATURE_CACHE: join(root, 'features'), CAPTIONRUN_LOG_LEVEL: 'debug' };

function specFile(name: string, batchSize: number): { file: string; output: string } {
  const dir = join(root, name);
  const file = `${dir}.yaml`;
  writeFileSync(file, tinySpec({ name, checkpointDir: join(dir, 'checkpoints') }).replace('batchSize: 8', `batchSize: ${batchSize}`));
  return { file, output: join(dir, 'outputs') };
}

async function train(name: string, nproc: number, batchSize: number): Promise<{ weights: Float32Array; lines: LogLine[] }> {
  const { file, output } = specFile(name, batchSize);
  const run = startCli(['train', '--nproc', String(nproc), '--output', output, file], env);
  const { code } = await run.exit;
  assert.equal(code, 0, run.stderrText().slice(-3000));
  assert.match(run.stdout(), /Validation BLEU-4/);
  return { weights: new Float32Array(new Uint8Array(readFileSync(join(output, 'decoder.f32'))).buffer), lines: run.lines };
}

let undisturbed: Float32Array | undefined;

test('2 processes x batch 4 end where 1 process x batch 8 ends (within 1e-5 relative); only rank 0 checkpoints', async () => {
  const one = await train('one', 1, 8);
  const two = await train('two', 2, 4);
  undisturbed = two.weights;
  let diff = 0;
  let scale = 0;
  for (let i = 0; i < one.weights.length; i++) {
    diff = Math.max(diff, Math.abs((one.weights[i] as number) - (two.weights[i] as number)));
    scale = Math.max(scale, Math.abs(one.weights[i] as number));
  }
  assert.ok(diff / scale < 1e-5, `max difference ${diff} against a largest weight of ${scale}`);
  const ranks = new Set(two.lines.filter((l) => l.msg === 'step').map((l) => l.rank));
  assert.deepEqual([...ranks].sort(), [0, 1], 'both ranks trained');
  const committers = new Set(two.lines.filter((l) => l.msg === 'checkpoint committed').map((l) => l.rank));
  assert.deepEqual([...committers], [0], 'only rank 0 committed checkpoints');
});

test('SIGKILL of rank 1: rank 0 exits at once naming its peer, both are relaunched from the checkpoint, same final weights', async () => {
  assert.ok(undisturbed, 'runs after the equivalence test');
  const { file, output } = specFile('killed', 4);
  let killedPid: number | undefined;
  let killedAt = 0;
  let committed = false;
  const run = startCli(['train', '--nproc', '2', '--output', output, file], env, (line) => {
    if (line.msg === 'checkpoint committed') committed = true;
    if (killedPid !== undefined || !committed || line.msg !== 'step' || line.rank !== 1 || (line.step as number) < 4) return;
    killedPid = line.pid as number;
    killedAt = Date.now();
    process.kill(killedPid, 'SIGKILL');
  });
  const { code } = await run.exit;
  assert.equal(code, 0, run.stderrText().slice(-3000));
  assert.ok(killedPid, 'rank 1 was killed');
  const peerLost = run.lines.find((l) => l.rank === 0 && typeof l.msg === 'string' && /rank 1/.test(l.msg) && l.level === 'error');
  assert.ok(peerLost, `rank 0 logged the lost peer; rank 0's errors: ${JSON.stringify(run.lines.filter((l) => l.rank === 0 && l.level === 'error'))}`);
  assert.ok(new Date(String(peerLost.time)).getTime() - killedAt < 10_000, 'and did so within seconds, not a collective timeout');
  const resumed = run.lines.filter((l) => typeof l.msg === 'string' && /^(resuming from|loaded) ckpt-/.test(l.msg));
  assert.deepEqual(new Set(resumed.map((l) => l.rank)), new Set([0, 1]), 'both ranks of the relaunched gang resumed from the checkpoint rank 0 chose');
  const weights = new Float32Array(new Uint8Array(readFileSync(join(output, 'decoder.f32'))).buffer);
  assert.ok(Buffer.from(weights.buffer).equals(Buffer.from(undisturbed.buffer)), 'the relaunched gang ended with the undisturbed run\'s weights');
});
