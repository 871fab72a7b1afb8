// `captionrun launch`: the per-pod launcher, as torchrun's: one training process per GPU of the pod, each
// with its place in the gang in the environment (RANK = NODE_RANK x N + LOCAL_RANK, LOCAL_RANK,
// LOCAL_WORLD_SIZE, WORLD_SIZE, CUDA_VISIBLE_DEVICES = its own GPU). SIGTERM and SIGINT are forwarded to
// every child. When one child fails the others cannot go on (their collectives would wait for it), so they
// are stopped and the launcher exits with the failed child's code, which the operator (or the local
// supervisor) judges like any trainer exit.
import { spawn, type ChildProcess } from 'node:child_process';
import { constants } from 'node:os';
import { join } from 'node:path';
import type { Command } from '../../lib/cli/command.js';
import { parseCommandArgs } from '../../lib/cli/command.js';
import { UsageError } from '../../lib/errors.js';
import { ExitCode } from '../../lib/exit-codes.js';
import { packageRoot } from '../../lib/package-info.js';
import { createLogger, type Logger } from '../../lib/telemetry/logger.js';

const CLI = join(packageRoot(), 'bin/captionrun');
/** How long the others get to stop on SIGTERM after a child failed, before SIGKILL. */
const STOP_GRACE_MS = 10_000;

export const launchCommand: Command = {
  name: 'launch',
  usage: `Usage: captionrun launch [--nproc-per-node N] COMMAND [ARGS...]

Runs \`captionrun COMMAND ARGS\` N times, as torchrun does: process i gets LOCAL_RANK=i,
RANK=NODE_RANK x N + i, LOCAL_WORLD_SIZE=N, WORLD_SIZE (default NNODES x N) and CUDA_VISIBLE_DEVICES set
to the i-th visible GPU, and /metrics on CAPTIONRUN_METRICS_PORT + i. MASTER_ADDR, MASTER_PORT and the
rest of the environment pass through. SIGTERM/SIGINT reach every process. When one process fails, the
others get SIGTERM (SIGKILL after 10 s) and the launcher exits with the failed process's code (128 + the
signal number when it was killed).

Options:
  --nproc-per-node N   processes to start (default LOCAL_WORLD_SIZE, else 1)
  -h, --help           show this help

Exit codes: those of the processes: 0 when all succeeded, 75 when they stopped after a final checkpoint,
else the first failure's; 2 for bad usage.
`,
  async run(argv) {
    // Options end at the COMMAND: everything after it belongs to that command.
    let split = 0;
    while (split < argv.length && (argv[split] as string).startsWith('-')) split += argv[split] === '--nproc-per-node' ? 2 : 1;
    const args = parseCommandArgs(this, argv.slice(0, split), { 'nproc-per-node': { type: 'string' } });
    if (!args) return ExitCode.Ok;
    const command = argv.slice(split);
    if (command.length === 0) throw new UsageError('give the captionrun COMMAND to run in each process', { hint: 'e.g. `captionrun launch --nproc-per-node 4 trainer run.yaml`' });
    const nproc = integer('--nproc-per-node', args.values['nproc-per-node'] ?? process.env.LOCAL_WORLD_SIZE ?? '1', 1);
    const nodeRank = integer('NODE_RANK', process.env.NODE_RANK ?? '0', 0);
    const worldSize = integer('WORLD_SIZE', process.env.WORLD_SIZE ?? String(integer('NNODES', process.env.NNODES ?? '1', 1) * nproc), 1);
    if ((nodeRank + 1) * nproc > worldSize) throw new UsageError(`NODE_RANK ${nodeRank} with ${nproc} processes per node does not fit WORLD_SIZE ${worldSize}`);
    const log = createLogger({ component: 'launcher', nodeRank });
    return launch({ argv: [process.execPath, CLI, ...command], nproc, nodeRank, worldSize, log });
  },
};

function integer(name: string, raw: string, min: number): number {
  const n = Number(raw);
  if (!Number.isInteger(n) || n < min) throw new UsageError(`${name} must be an integer >= ${min}, got "${raw}"`);
  return n;
}

export interface LaunchOptions {
  /** The program and arguments each process runs, e.g. node, bin/captionrun, trainer, run.yaml. */
  argv: string[];
  nproc: number;
  nodeRank: number;
  worldSize: number;
  log: Logger;
}

/** The environment of local process i: its ranks, its GPU and its own metrics port. */
export function childEnv(base: NodeJS.ProcessEnv, i: number, o: Pick<LaunchOptions, 'nproc' | 'nodeRank' | 'worldSize'>): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {
    ...base,
    RANK: String(o.nodeRank * o.nproc + i),
    LOCAL_RANK: String(i),
    LOCAL_WORLD_SIZE: String(o.nproc),
    WORLD_SIZE: String(o.worldSize),
  };
  // The GPUs this pod may use, as the runtime lists them (indices or UUIDs); each process sees only its own.
  const visible = (base.CUDA_VISIBLE_DEVICES ?? base.NVIDIA_VISIBLE_DEVICES ?? '').split(',').filter((d) => d !== '' && d !== 'all' && d !== 'none');
  env.CUDA_VISIBLE_DEVICES = visible[i] ?? String(i);
  const metricsPort = Number(base.CAPTIONRUN_METRICS_PORT ?? 0);
  if (metricsPort > 0) env.CAPTIONRUN_METRICS_PORT = String(metricsPort + i);
  return env;
}

export async function launch(o: LaunchOptions): Promise<number> {
  const children: ChildProcess[] = [];
  let failed: number | undefined;
  let graceTimer: NodeJS.Timeout | undefined;
  const signalAll = (signal: NodeJS.Signals): void => {
    for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill(signal);
  };
  const forward = (signal: NodeJS.Signals): void => {
    o.log.info({ signal }, `${signal}: forwarding to ${children.length} training processes`);
    signalAll(signal);
  };
  const onTerm = (): void => forward('SIGTERM');
  const onInt = (): void => forward('SIGINT');
  process.on('SIGTERM', onTerm);
  process.on('SIGINT', onInt);
  const exited = (rank: string, code: number): number => {
    if (code !== ExitCode.Ok && code !== ExitCode.Checkpointed && failed === undefined) {
      failed = code;
      o.log.error({ rank: Number(rank), exitCode: code }, `rank ${rank} exited with code ${code}; stopping the other processes of this pod`);
      signalAll('SIGTERM');
      graceTimer = setTimeout(() => signalAll('SIGKILL'), STOP_GRACE_MS);
    }
    return code;
  };
  try {
    const exits = Array.from({ length: o.nproc }, (_, i) => {
      const env = childEnv(process.env, i, o);
      const rank = env.RANK as string;
      const [program, ...args] = o.argv as [string, ...string[]];
      const child = spawn(program, args, { stdio: 'inherit', env });
      children.push(child);
      o.log.info({ rank: Number(rank), localRank: i, pid: child.pid, gpu: env.CUDA_VISIBLE_DEVICES }, `started rank ${rank} (local rank ${i}, pid ${child.pid ?? '?'})`);
      return new Promise<number>((resolve) => {
        child.once('error', (err) => {
          o.log.error({ err, localRank: i }, `cannot start local rank ${i}: ${err.message}`);
          resolve(ExitCode.Failure);
        });
        child.once('exit', (code, signal) => resolve(code ?? 128 + (signal ? constants.signals[signal] : 0)));
      }).then((code) => exited(rank, code));
    });
    const codes = await Promise.all(exits);
    if (failed !== undefined) return failed;
    return codes.includes(ExitCode.Checkpointed) ? ExitCode.Checkpointed : ExitCode.Ok;
  } finally {
    if (graceTimer) clearTimeout(graceTimer);
    process.off('SIGTERM', onTerm);
    process.off('SIGINT', onInt);
  }
}
