// The local stand-in for the operator's restart logic: runs the trainer as a child process and, when it
// dies (any signal, any non-zero code), relaunches it — it resumes from the latest valid checkpoint by
// itself — after an exponential backoff, up to restartPolicy.backoffLimit relaunches. Permanent codes
// (usage, invalid input) are never retried, so a bad spec fails once instead of spinning. A child that
// stopped on SIGTERM after a final checkpoint (exit 75) lost nothing and is relaunched at once without
// counting as a failure. SIGINT/SIGTERM to the supervisor are forwarded, so Ctrl-C checkpoints too.
import { spawn, type ChildProcess } from 'node:child_process';
import type { RestartPolicySpec } from '../../lib/api/types.js';
import { ExitCode } from '../../lib/exit-codes.js';
import { isRetryableExitCode, relaunchDelaySeconds } from '../../lib/restart-policy.js';
import type { Logger } from '../../lib/telemetry/logger.js';

export interface SupervisorOptions {
  /** Executable and arguments of the trainer process. */
  command: string;
  args: string[];
  restartPolicy: RestartPolicySpec;
  log: Logger;
  env?: NodeJS.ProcessEnv;
  /** Extra arguments per launch (e.g. --resume never for the first launch only, auto after). */
  resumeArgs?: () => string[];
}

export interface ChildExit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

export type Verdict = { action: 'done'; exitCode: number } | { action: 'relaunch'; countsAsFailure: boolean };

/** What to do after the child exited: the whole restart policy in one pure function. */
export function judgeExit(exit: ChildExit, policy: RestartPolicySpec): Verdict {
  if (exit.signal === null && exit.code === ExitCode.Ok) return { action: 'done', exitCode: ExitCode.Ok };
  if (exit.signal === null && exit.code === ExitCode.Checkpointed) return { action: 'relaunch', countsAsFailure: false };
  if (exit.signal !== null || exit.code === null) return { action: 'relaunch', countsAsFailure: true };
  return isRetryableExitCode(exit.code, policy) ? { action: 'relaunch', countsAsFailure: true } : { action: 'done', exitCode: exit.code };
}

export async function supervise(opts: SupervisorOptions): Promise<number> {
  const { log, restartPolicy: policy } = opts;
  let child: ChildProcess | undefined;
  let stopping = false;
  let wakeUp: (() => void) | undefined;
  const forward = (signal: NodeJS.Signals): void => {
    if (stopping && child) {
      log.warn({ pid: child.pid }, `second ${signal}: killing the trainer`);
      child.kill('SIGKILL');
      return;
    }
    stopping = true;
    log.info({ signal }, `${signal}: asking the trainer to checkpoint and stop`);
    child?.kill('SIGTERM');
    wakeUp?.();
  };
  const onInt = (): void => forward('SIGINT');
  const onTerm = (): void => forward('SIGTERM');
  process.on('SIGINT', onInt);
  process.on('SIGTERM', onTerm);
  let failures = 0;
  let launches = 0;
  try {
    for (;;) {
      launches += 1;
      const current = spawn(opts.command, [...opts.args, ...(opts.resumeArgs?.() ?? [])], {
        stdio: 'inherit',
        // The attempt lets a relaunched gang refuse a straggler of the previous one at its rendezvous.
        env: { ...(opts.env ?? process.env), CAPTIONRUN_LAUNCH: String(launches), CAPTIONRUN_ATTEMPT: String(launches - 1) },
      });
      child = current;
      log.info({ pid: current.pid, launch: launches, failures }, `trainer started (pid ${current.pid ?? '?'}, launch ${launches})`);
      const exit = await new Promise<ChildExit>((resolve) => {
        current.once('error', (err) => {
          log.error({ err }, `cannot start the trainer: ${err.message}`);
          resolve({ code: ExitCode.Usage, signal: null });
        });
        current.once('exit', (code, signal) => resolve({ code, signal }));
      });
      child = undefined;
      const how = exit.signal ? `killed by ${exit.signal}` : `exited with code ${exit.code ?? '?'}`;
      if (stopping) {
        log.info({ ...exit }, `trainer ${how}; stopping as asked`);
        return exit.code ?? ExitCode.Failure;
      }
      const verdict = judgeExit(exit, policy);
      if (verdict.action === 'done') {
        if (verdict.exitCode !== ExitCode.Ok) log.error({ ...exit }, `trainer ${how}: a permanent failure (fix the input and run again); not retrying`);
        return verdict.exitCode;
      }
      let delay = 0;
      if (verdict.countsAsFailure) {
        failures += 1;
        if (failures > policy.backoffLimit) {
          log.error({ ...exit, failures, backoffLimit: policy.backoffLimit }, `trainer ${how}; restartPolicy.backoffLimit (${policy.backoffLimit}) reached, giving up`);
          return exit.code ?? ExitCode.Failure;
        }
        delay = relaunchDelaySeconds(failures, policy);
      }
      log.warn({ ...exit, failures, backoffLimit: policy.backoffLimit, delaySeconds: delay }, `trainer ${how}; relaunching from the latest valid checkpoint in ${delay} s`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, delay * 1000);
        wakeUp = () => {
          clearTimeout(timer);
          resolve();
        };
      });
      wakeUp = undefined;
      if (stopping) return ExitCode.Checkpointed;
    }
  } finally {
    process.off('SIGINT', onInt);
    process.off('SIGTERM', onTerm);
  }
}
