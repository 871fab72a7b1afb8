// `captionrun train SPEC`: local mode. Validates the spec, then runs `captionrun trainer SPEC --resume auto`
// under the supervisor, which relaunches it from the latest valid checkpoint whenever it dies.
import { join } from 'node:path';
import type { Command } from '../../lib/cli/command.js';
import { parseCommandArgs } from '../../lib/cli/command.js';
import { UsageError } from '../../lib/errors.js';
import { ExitCode } from '../../lib/exit-codes.js';
import { packageRoot } from '../../lib/package-info.js';
import { createLogger } from '../../lib/telemetry/logger.js';
import { loadRun } from '../train/trainer-command.js';
import { supervise } from './supervisor.js';

const CLI = join(packageRoot(), 'bin/captionrun');

export const trainCommand: Command = {
  name: 'train',
  summary: 'train a CaptionTrainingRun locally, relaunching the trainer from its checkpoints when it crashes',
  usage: `Usage: captionrun train [--fresh] [--output DIR] SPEC

Runs the CaptionTrainingRun in SPEC on this machine: the trainer runs as a child process under a
supervisor that relaunches it from the latest valid checkpoint (spec.checkpoint.store) whenever it dies,
waiting spec.restartPolicy.backoffSeconds (doubling, up to maxBackoffSeconds) and giving up after
backoffLimit failures. Invalid specs and data fail at once without retries. Ctrl-C writes a final
checkpoint; running the same command again continues from it.

At the end it prints the validation BLEU-4 and the directory with the weights, captions and metrics.

Options:
  --fresh        ignore existing checkpoints and start from step 0 (they are overwritten as training goes)
  --output DIR   where the outputs go (default .captionrun/outputs/<run name>)
  -h, --help     show this help

Exit codes: 0 trained, 1 failed after backoffLimit relaunches, 2 usage, 3 invalid spec or data,
75 stopped by Ctrl-C/SIGTERM after a final checkpoint.
`,
  async run(argv) {
    const args = parseCommandArgs(this, argv, { fresh: { type: 'boolean', default: false }, output: { type: 'string' } });
    if (!args) return ExitCode.Ok;
    const [file, ...extra] = args.positionals;
    if (file === undefined || extra.length > 0) throw new UsageError('give exactly one SPEC file', { hint: 'see `captionrun train --help`' });
    const run = await loadRun(file);
    const log = createLogger({ component: 'supervisor', run: run.metadata.name });
    const trainerArgs = [CLI, 'trainer', file, ...(args.values.output ? ['--output', args.values.output] : [])];
    let first = true;
    return supervise({
      command: process.execPath,
      args: trainerArgs,
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
