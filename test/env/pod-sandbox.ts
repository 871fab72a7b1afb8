// What a container runtime gives a process that a plain spawn does not: its pod's /etc/resolv.conf and
// /etc/hosts, and its pod's hostname. Each container process gets its own mount and UTS namespaces
// (`unshare --mount --uts --propagation private`), a small sh script bind-mounts the pod's files over the
// machine's there (nothing outside the namespace sees them) and sets the hostname, then `exec`s the
// container's program. No --fork: unshare, the script and the program are one process, so the pid the
// node agent holds, its process group, the signals it sends and the exit status it reads are the
// program's own, as before. Needs root (CAP_SYS_ADMIN), as CI and this machine run; where the namespace or
// a mount cannot be made the container fails with StartError and the reason, never with a faked resolver.
import { accessSync, constants, statSync } from 'node:fs';
import { delimiter, isAbsolute, join, resolve } from 'node:path';

export interface SandboxFiles {
  resolvConf: string;
  /** The pod's hosts file; undefined keeps the machine's (hostNetwork pods). */
  hosts?: string;
  /** The pod's hostname; undefined keeps the machine's (hostNetwork pods). */
  hostname?: string;
  /**
   * Written before the start with a message saying the namespace could not be made; the script replaces it
   * with what failed, or empties it just before the exec. Non-empty after a start means StartError.
   */
  statusFile: string;
}

export const SANDBOX_START_ERROR_CODE = 128;

// $1 status file, $2 resolv.conf, $3 hosts ('' keeps), $4 hostname ('' keeps), $5 mount (the agent's, by path:
// the container's PATH is the container's), then the program and its args. The hostname is written to /proc,
// which in a new UTS namespace sets that namespace's name: no extra program.
const SCRIPT = `s=$1 r=$2 h=$3 n=$4 m=$5
shift 5
fail() { printf '%s\\n' "$1" > "$s"; exit ${SANDBOX_START_ERROR_CODE}; }
out=$("$m" --bind "$r" /etc/resolv.conf 2>&1) || fail "cannot bind-mount the pod's resolv.conf over /etc/resolv.conf: $out"
if [ -n "$h" ]; then out=$("$m" --bind "$h" /etc/hosts 2>&1) || fail "cannot bind-mount the pod's hosts file over /etc/hosts: $out"; fi
if [ -n "$n" ]; then out=$( (printf '%s' "$n" > /proc/sys/kernel/hostname) 2>&1) || fail "cannot set the pod's hostname: $out"; fi
: > "$s"
unset PWD
exec "$@"`;

/** The message left in the status file when unshare itself failed (the script never ran). */
export const UNSHARE_FAILED = 'cannot create the pod\'s mount and UTS namespaces with `unshare --mount --uts` ' +
  '(the node agent needs root, or CAP_SYS_ADMIN, for per-pod /etc/resolv.conf)';

/** The node agent's own tools, found on its PATH once: a container's env may set any PATH. */
const tools = new Map<string, string>();
function tool(name: string): string {
  let path = tools.get(name);
  if (!path) {
    path = findExecutable(name, process.env.PATH, process.cwd()) ?? name;
    tools.set(name, path);
  }
  return path;
}

/** The argv that runs `argv` (its program by path) inside the pod's sandbox, the same pid throughout. */
export function sandboxArgv(files: SandboxFiles, argv: string[]): string[] {
  const uts = files.hostname !== undefined ? ['--uts'] : [];
  return [
    tool('unshare'), '--mount', ...uts, '--propagation', 'private', '--', '/bin/sh', '-c', SCRIPT, 'pod-sandbox',
    files.statusFile, files.resolvConf, files.hosts ?? '', files.hostname ?? '', tool('mount'), ...argv,
  ];
}

function executable(path: string): boolean {
  try {
    accessSync(path, constants.X_OK);
    return statSync(path).isFile();
  } catch {
    return false;
  }
}

/**
 * The program's path as execvp would find it with the container's PATH, or undefined: a runtime reports a
 * missing executable as StartError rather than as an exit code, and inside the script it would be a 127.
 */
export function findExecutable(program: string, path: string | undefined, cwd: string): string | undefined {
  if (program.includes('/')) {
    const full = isAbsolute(program) ? program : resolve(cwd, program);
    return executable(full) ? full : undefined;
  }
  for (const dir of (path ?? '/usr/local/bin:/usr/bin:/bin').split(delimiter)) {
    const full = join(dir === '' ? cwd : resolve(cwd, dir), program);
    if (executable(full)) return full;
  }
  return undefined;
}
