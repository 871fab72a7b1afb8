// Exact resume through real processes: `captionrun train` (the supervisor) runs the trainer as a child; the
// test kills that child with SIGKILL at two random steps, or stops it with SIGTERM, and the relaunched
// trainer must end with weights byte-identical to an uninterrupted run's.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { cpSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startCli, tinySpec, type LogLine } from './train-helpers.js';

const root = mkdtempSync(join(tmpdir(), 'captionrun-train-resume-'));
// One feature cache for all runs: the encoder runs once per image, the trainers after that read float16 entries.
const env = { CAPTIONRUN_FEATURE_CACHE: join(root, 'features'), CAPTIONRUN_LOG_LEVEL: 'debug' };

function specFile(name: string): { file: string; output: string } {
  const dir = join(root, name);
  const file = `${dir}.yaml`;
  writeFileSync(file, tinySpec({ name, checkpointDir: join(dir, 'checkpoints') }));
  return { file, output: join(dir, 'outputs') };
}

async function trainUninterrupted(): Promise<Buffer> {
  const { file, output } = specFile('straight');
  const run = startCli(['train', '--output', output, file], env);
  const { code } = await run.exit;
  assert.equal(code, 0, run.stderrText().slice(-3000));
  assert.match(run.stdout(), /Validation BLEU-4/);
  return readFileSync(join(output, 'decoder.f32'));
}

let expected: Buffer | undefined;
async function reference(): Promise<Buffer> {
  expected ??= await trainUninterrupted();
  return expected;
}

const isStep = (l: LogLine): boolean => l.msg === 'step' && typeof l.step === 'number' && typeof l.pid === 'number';

test('SIGKILL at two random steps: the supervisor relaunches and the final weights are byte-identical', async () => {
  const straight = await reference();
  const totalSteps = straightSteps();
  // From step 3 on, the checkpoint of step 2 usually exists, so the first relaunch resumes rather than restarts.
  const first = 3 + Math.floor(Math.random() * (totalSteps / 2 - 3));
  const second = first + 1 + Math.floor(Math.random() * (totalSteps - first - 2));
  const { file, output } = specFile('killed');
  const killedPids: number[] = [];
  const targets = [first, second];
  // The second kill waits until its trainer has committed a checkpoint (on whichever line comes later, the
  // step or the commit): on a loaded machine the async writer can lag several steps behind, and a kill
  // before any commit would, correctly, restart from step 0.
  const committedBy = new Set<number>();
  const lastStep = new Map<number, number>();
  const run = startCli(['train', '--output', output, file], env, (line) => {
    const pid = line.pid;
    if (typeof pid !== 'number' || line.component === 'supervisor' || killedPids.includes(pid)) return;
    if (line.msg === 'checkpoint committed') committedBy.add(pid);
    if (isStep(line)) lastStep.set(pid, line.step as number);
    const target = targets[killedPids.length];
    if (target === undefined || (lastStep.get(pid) ?? -1) < target) return;
    if (killedPids.length === 1 && !committedBy.has(pid)) return;
    killedPids.push(pid);
    process.kill(pid, 'SIGKILL');
  });
  const { code } = await run.exit;
  assert.equal(code, 0, `killed at steps ${first} and ${second}\n${run.stderrText().slice(-3000)}`);
  const stepsByPid = new Map<number, number[]>();
  for (const l of run.lines.filter(isStep)) stepsByPid.set(l.pid as number, [...(stepsByPid.get(l.pid as number) ?? []), l.step as number]);
  assert.equal(killedPids.length, 2, `both kills happened (steps ${first}, ${second}); steps seen per trainer: ${JSON.stringify([...stepsByPid])}`);
  const launches = run.lines.filter((l) => l.component === 'supervisor' && typeof l.msg === 'string' && l.msg.startsWith('trainer started'));
  assert.equal(launches.length, 3, 'one launch and two relaunches');
  // A kill before the first checkpoint commits legitimately restarts from step 0; the second kill comes
  // after a commit, so its relaunch must resume.
  const resumed = run.lines.filter((l) => typeof l.msg === 'string' && l.msg.startsWith('resuming from ckpt-'));
  assert.ok(resumed.length >= 1, 'a relaunch resumed from a checkpoint');
  assert.ok(readFileSync(join(output, 'decoder.f32')).equals(straight), `weights differ (killed at steps ${first} and ${second})`);
});

test('SIGTERM: the trainer checkpoints the step it is on, the relaunch resumes there (0 steps lost), same weights', async () => {
  const straight = await reference();
  const { file, output } = specFile('terminated');
  let termPid: number | undefined;
  let stepAtTerm = -1;
  const at = 3;
  const run = startCli(['train', '--output', output, file], env, (line) => {
    if (termPid !== undefined || !isStep(line) || (line.step as number) < at) return;
    termPid = line.pid as number;
    stepAtTerm = line.step as number;
    process.kill(termPid, 'SIGTERM');
  });
  const { code } = await run.exit;
  assert.equal(code, 0, run.stderrText().slice(-3000));
  const stopped = run.lines.find((l) => l.pid === termPid && typeof l.msg === 'string' && l.msg.startsWith('stopped on request'));
  assert.ok(stopped, 'the trainer said it stopped with a final checkpoint');
  const exitLine = run.lines.find((l) => l.component === 'supervisor' && l.code === 75);
  assert.ok(exitLine, 'the trainer exited 75 (Checkpointed)');
  const stoppedAt = stopped.step as number;
  assert.ok(stoppedAt >= stepAtTerm, 'the step in progress at SIGTERM was finished, not dropped');
  const resumed = run.lines.find((l) => l.pid !== termPid && typeof l.msg === 'string' && l.msg.startsWith('resuming from ckpt-'));
  assert.equal(resumed?.step, stoppedAt, 'the relaunch resumed at exactly the step the stopped trainer reached');
  assert.ok(readFileSync(join(output, 'decoder.f32')).equals(straight));
});

function straightSteps(): number {
  return (JSON.parse(readFileSync(join(root, 'straight', 'outputs', 'metrics.json'), 'utf8')) as { step: number }).step;
}

test('CAPTIONRUN_RESUME_FROM: the trainer resumes from the checkpoint the operator chose, and from the latest valid one when that one is corrupt', async () => {
  await reference();
  // A copy of the finished run's store, so corrupting it leaves the other tests' checkpoints alone.
  const dir = join(root, 'hinted');
  const store = join(dir, 'checkpoints');
  cpSync(join(root, 'straight', 'checkpoints'), store, { recursive: true });
  const file = `${dir}.yaml`;
  writeFileSync(file, tinySpec({ name: 'straight', checkpointDir: store }));
  const runDir = join(store, 'default', 'straight');
  const names = readdirSync(runDir).filter((n) => n.startsWith('ckpt-')).sort();
  assert.ok(names.length >= 2, `two checkpoints to choose between: ${names.join(', ')}`);
  const [older, newest] = [names.at(-2) as string, names.at(-1) as string];
  const resumedFrom = async (hint: string): Promise<{ name: unknown; warning?: LogLine }> => {
    const run = startCli(['trainer', '--output', join(dir, 'outputs'), file], { ...env, CAPTIONRUN_RESUME_FROM: `${runDir}/${hint}` });
    const { code } = await run.exit;
    assert.equal(code, 0, run.stderrText().slice(-3000));
    const resumed = run.lines.find((l) => typeof l.msg === 'string' && l.msg.startsWith('resuming from ckpt-'));
    return { name: resumed?.checkpoint, warning: run.lines.find((l) => l.resumeFrom === `${runDir}/${hint}`) };
  };
  const chosen = await resumedFrom(older);
  assert.equal(chosen.name, older, 'the operator\'s choice, not the newest checkpoint');
  assert.equal(chosen.warning, undefined);
  // Flip one byte of the chosen checkpoint's weights: its digest no longer matches, so it is never loaded.
  const weights = readdirSync(join(runDir, older)).find((f) => f !== 'MANIFEST.json' && f !== 'state.json') as string;
  const bytes = readFileSync(join(runDir, older, weights));
  bytes[0] = (bytes[0] ?? 0) ^ 0xff;
  writeFileSync(join(runDir, older, weights), bytes);
  const fallback = await resumedFrom(older);
  assert.equal(fallback.name, newest, 'a corrupt choice falls back to the latest valid checkpoint');
  assert.match(String(fallback.warning?.msg), /is invalid .*resuming from the latest valid checkpoint instead/);
});
