// `captionrun train SPEC`: local mode. Validates the spec, then runs `captionrun trainer SPEC --resume auto`
// under the supervisor, which relaunches it from the latest valid checkpoint whenever it dies. With several
// processes (spec.resources.workers or --nproc) the supervisor runs them through the same launcher a
// worker pod uses, rendezvousing on loopback, so data-parallel training works here exactly as in a gang.
import { randomUUID } from 'node:crypto';
import { join } from 'node:path';
import type { Command } from '../../lib/cli/command.js';
import { parseCommandArgs } from '../../lib/cli/command.js';
import { UsageError } from '../../lib/errors.js';
import { freePort } from '../../lib/free-port.js';
import { ExitCode } from '../../lib/exit-codes.js';
import { packageRoot } from '../../lib/package-info.js';
import { createLogger } from '../../lib/telemetry/logger.js';
import { loadRun } from '../train/trainer-command.js';
import { supervise } from './supervisor.js';

const CLI = join(packageRoot(), 'bin/captionrun');

export const trainCommand: Command = {
  name: 'train',
  usage: `Usage: captionrun train [--fresh] [--nproc N] [--output DIR] SPEC

Runs the CaptionTrainingRun in SPEC on this machine: the trainer runs as a child process under a
supervisor that relaunches it from the latest valid checkpoint (spec.checkpoint.store) whenever it dies,
waiting spec.restartPolicy.backoffSeconds (doubling, up to maxBackoffSeconds) and giving up after
backoffLimit failures. Invalid specs and data fail at once without retries. Ctrl-C writes a final
checkpoint; running the same command again continues from it.

With --nproc N (default spec.resources.workers) it trains data-parallel in N processes on this machine,
as a gang of N ranks would: each takes its slice of every global batch (batchSize x N), gradients are
summed by a ring all-reduce over loopback TCP, rank 0 writes the checkpoints and outputs, and when any
process dies all N are relaunched from the latest valid checkpoint. A checkpoint written by N processes
resumes on any other number.

At the end it prints the validation BLEU-4 and the directory with the weights, captions and metrics.

Options:
  --fresh        ignore existing checkpoints and start from step 0 (they are overwritten as training goes)
  --nproc N      training processes (default spec.resources.workers)
  --output DIR   where the outputs go (default .captionrun/outputs/<run name>)
  -h, --help     show this help

Exit codes: 0 trained, 1 failed after backoffLimit relaunches, 2 usage, 3 invalid spec or data,
75 stopped by Ctrl-C/SIGTERM after a final checkpoint.
`,
  async run(argv) {
    const args = parseCommandArgs(this, argv, { fresh: { type: 'boolean', default: false }, nproc: { type: 'string' }, output: { type: 'string' } });
    if (!args) return ExitCode.Ok;
    const [file, ...extra] = args.positionals;
    if (file === undefined || extra.length > 0) throw new UsageError('give exactly one SPEC file', { hint: 'see `captionrun train --help`' });
    const run = await loadRun(file);
    const nproc = Number(args.values.nproc ?? run.spec.resources.workers);
    if (!Number.isInteger(nproc) || nproc < 1 || nproc > 64) throw new UsageError(`--nproc must be an integer from 1 to 64, got "${args.values.nproc ?? ''}"`);
    const log = createLogger({ component: 'supervisor', run: run.metadata.name });
    const trainerArgs = ['trainer', file, ...(args.values.output ? ['--output', args.values.output] : [])];
    // One process needs no launcher, and no rendezvous (WORLD_SIZE 1).
    const gang = nproc > 1 ? await loopbackGang(nproc) : undefined;
    let first = true;
    return supervise({
      command: process.execPath,
      args: gang ? [CLI, 'launch', '--nproc-per-node', String(nproc), ...trainerArgs] : [CLI, ...trainerArgs],
      env: gang ? { ...process.env, ...gang } : undefined,
      restartPolicy: run.spec.restartPolicy,
      log,
      resumeArgs: () => {
        const resume = first && args.values.fresh ? 'never' : 'auto';
        first = false;
        return ['--resume', resume];
      },
    });
  },
};

/**
 * The rendezvous environment of a local gang: rank 0 listens on a free loopback port, and a session id
 * that no other `captionrun train` shares (the supervisor adds the launch number as the attempt).
 */
async function loopbackGang(nproc: number): Promise<NodeJS.ProcessEnv> {
  const port = await freePort();
  return { MASTER_ADDR: '127.0.0.1', MASTER_PORT: String(port), POD_IP: '127.0.0.1', WORLD_SIZE: String(nproc), NODE_RANK: '0', CAPTIONRUN_RUN_ID: randomUUID() };
}
