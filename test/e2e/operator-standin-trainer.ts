// A stand-in for `captionrun trainer` in operator tests: the same process contract at a fraction of the cost.
// It reads the spec file the operator mounts (and exits 3 if it is not a valid run, as the trainer would),
// rank 0 commits a real checkpoint through lib/checkpoint, and SIGTERM writes a final one and exits 75.
// The first argument (from the test's image map) picks the behaviour: train, crash, invalid or succeed.
import { readFileSync } from 'node:fs';
import { validateRun } from '../../lib/api/validate.js';
import type { CaptionTrainingRun } from '../../lib/api/types.js';
import { checkpointLocation, CheckpointWriter, openStore, RESUME_FROM_ENV } from '../../lib/checkpoint/index.js';
import { ExitCode } from '../../lib/exit-codes.js';

const [mode, ...args] = process.argv.slice(2);
const specFile = args.at(-1) ?? '';

function exit(code: number, line: string): never {
  process.stderr.write(`${line}\n`);
  process.exit(code);
}

if (mode === 'crash') exit(ExitCode.Failure, 'fatal: cannot open dataset shard 7');
if (mode === 'invalid') exit(ExitCode.InvalidInput, 'invalid spec: spec.dataset.source: bucket "nope" does not exist');

let spec: unknown;
try {
  spec = JSON.parse(readFileSync(specFile, 'utf8'));
} catch (err) {
  exit(ExitCode.InvalidInput, `cannot read the spec ${specFile}: ${(err as Error).message}`);
}
const valid = validateRun(spec);
if (!valid.ok) exit(ExitCode.InvalidInput, `${specFile} is not a valid CaptionTrainingRun`);
const run: CaptionTrainingRun = valid.run;

const attempt = Number(process.env.CAPTIONRUN_ATTEMPT ?? '0');
const rank = Number(process.env.NODE_RANK ?? '0');
const uri = checkpointLocation(run.spec.checkpoint.store, run.metadata.namespace ?? 'default', run.metadata.name).uri;
const writer = rank === 0 ? new CheckpointWriter({ store: openStore(uri), whenBusy: 'wait', resumedFrom: process.env[RESUME_FROM_ENV]?.split('/').at(-1) ?? null }) : undefined;

async function save(step: number): Promise<void> {
  if (!writer) return;
  const result = await writer.save({ step, epoch: Math.floor(step / 10), files: [{ name: 'weights.bin', data: new Uint8Array(64).fill(step % 256) }], state: { attempt }, metrics: { loss: 5 / (step + 1), valBleu4: step / 1000 } });
  if (result.accepted) await result.committed;
}

const step = (attempt + 1) * 10;
process.on('SIGTERM', () => {
  void save(step + 5).then(async () => {
    await writer?.close();
    exit(ExitCode.Checkpointed, `SIGTERM: final checkpoint at step ${step + 5}`);
  });
});
await save(step);
process.stdout.write(`rank ${rank} attempt ${attempt} trained to step ${step}\n`);
if (mode === 'succeed') {
  await writer?.close();
  exit(ExitCode.Ok, 'done');
}
setInterval(() => undefined, 1 << 30);
