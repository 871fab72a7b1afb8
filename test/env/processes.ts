// Child processes of the test cluster run in their own process groups, so that stopping one also stops
// everything it forked (a trainer's workers, a shell's children). A synchronous exit hook kills whatever is
// still alive when the owning process ends for any reason short of SIGKILL, so a failed test leaks nothing.
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, openSync } from 'node:fs';
import { constants } from 'node:os';

export interface GroupProcess {
  name: string;
  pid: number;
  child: ChildProcess;
  /** Resolves with the exit code, or 128 + signal number when a signal ended it (the shell convention). */
  exited: Promise<number>;
}

const live = new Set<number>();
const exitHooks = new Set<() => void>();
let hooked = false;

function installExitHook(): void {
  if (hooked) return;
  hooked = true;
  process.on('exit', () => {
    for (const hook of exitHooks) hook();
    for (const pid of live) signalGroup(pid, 'SIGKILL');
  });
  // Without these a Ctrl-C or a plain `kill` would end node without running the exit hooks.
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    if (process.listenerCount(sig) === 0) process.once(sig, () => process.exit(128 + signalNumber(sig)));
  }
}

/** Registers a synchronous clean-up (removing temp dirs) that runs when this process exits; returns its remover. */
export function onProcessExit(hook: () => void): () => void {
  installExitHook();
  exitHooks.add(hook);
  return () => exitHooks.delete(hook);
}

export function signalNumber(sig: NodeJS.Signals): number {
  return constants.signals[sig];
}

export function spawnGroup(
  name: string,
  command: string,
  args: string[],
  options: { logPath: string; env?: NodeJS.ProcessEnv; cwd?: string },
): GroupProcess {
  installExitHook();
  const fd = openSync(options.logPath, 'a');
  const child = spawn(command, args, {
    detached: true,
    cwd: options.cwd,
    env: options.env ?? process.env,
    stdio: ['ignore', fd, fd],
  });
  closeSync(fd);
  const exited = new Promise<number>((resolve) => {
    child.once('error', () => resolve(128));
    child.once('exit', (code, signal) => {
      if (child.pid) live.delete(child.pid);
      resolve(code ?? 128 + (signal ? signalNumber(signal) : 0));
    });
  });
  if (child.pid) live.add(child.pid);
  return { name, pid: child.pid ?? -1, child, exited };
}

/** Signals a whole process group; a group that is already gone is not an error. */
export function signalGroup(pid: number, signal: NodeJS.Signals): void {
  if (pid <= 0) return;
  try {
    process.kill(-pid, signal);
  } catch {
    // ESRCH: the group has exited already.
  }
}

/** SIGTERM, then SIGKILL once graceMs has passed; resolves when the leader has exited. */
export async function stopGroup(proc: GroupProcess, graceMs: number): Promise<number> {
  signalGroup(proc.pid, 'SIGTERM');
  const timer = setTimeout(() => signalGroup(proc.pid, 'SIGKILL'), graceMs);
  const code = await proc.exited;
  clearTimeout(timer);
  // Children that ignored SIGTERM outlive their leader; the group id stays valid while any of them run.
  signalGroup(proc.pid, 'SIGKILL');
  return code;
}
