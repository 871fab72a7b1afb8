// What a container runtime gives a process that a plain spawn does not: its pod's /etc/resolv.conf and
// /etc/hosts, its pod's hostname, and its volumes at their mount paths. Each container process gets its own
// mount and UTS namespaces (`unshare --mount --uts --propagation private`), a small bash script bind-mounts
// the pod's files and volumes there (nothing outside the namespace sees them) and sets the hostname, then
// `exec`s the container's program. No --fork: unshare, the script and the program are one process, so the
// pid the node agent holds, its process group, the signals it sends and the exit status it reads are the
// program's own. Needs root (CAP_SYS_ADMIN), as CI and this machine run; where the namespace or a mount
// cannot be made the container fails with StartError and the reason, never with a faked path.
import { accessSync, constants, statSync } from 'node:fs';
import { delimiter, isAbsolute, join, resolve } from 'node:path';

/** A host path bind-mounted at a container path. */
export interface SandboxMount {
  source: string;
  target: string;
  readOnly: boolean;
}

export interface SandboxFiles {
  resolvConf: string;
  /** The pod's hosts file; undefined keeps the machine's (hostNetwork pods). */
  hosts?: string;
  /** The pod's hostname; undefined keeps the machine's (hostNetwork pods). */
  hostname?: string;
  /** Mounted in this order, so a mount inside another comes after it. */
  mounts?: SandboxMount[];
  /** The container's working directory, entered once its volumes are mounted (created if missing, as runtimes do). */
  workingDir?: string;
  /**
   * Written before the start with a message saying the namespace could not be made; the script replaces it
   * with what failed, or empties it just before the exec. Non-empty after a start means StartError.
   */
  statusFile: string;
}

export const SANDBOX_START_ERROR_CODE = 128;

// $1 status file, $2 resolv.conf, $3 hosts ('' keeps), $4 hostname ('' keeps), $5 mount (the agent's, by path:
// the container's PATH is the container's), $6 working dir ('' keeps), $7 the number of volume mounts, then
// that many (source, target, rw|ro) triples, then the program and its args. Every file the script needs
// after a mount (status file, mount sources) is opened first and reached through the shell's /proc/PID/fd
// (mount's own would not have it, and mount must not canonicalize the link back into a path): a volume at
// /tmp hides whatever lay under /tmp on the machine, the node agent's own pod directories included. A mount
// point missing from the machine is created there (empty), as a runtime creates it in the image's root, except
// under /dev: that is the container's own, a tmpfs holding the devices a runtime gives by default (null,
// zero, full, random, urandom, tty, pts, shm, mqueue, the /proc/self/fd links) and the machine's nvidia*
// devices, so the termination-message file leaves no /dev/termination-log on the machine, where every local
// trainer run would take it for a kubelet's and write its failure there. The hostname is written to /proc,
// which in a new UTS namespace sets that namespace's name: no extra program.
const SCRIPT = `r=$2 h=$3 n=$4 m=$5 w=$6 k=$7
exec {so}<>"$1" || exit ${SANDBOX_START_ERROR_CODE}
shift 7
fail() { printf '%s\n' "$1" > "/proc/self/fd/$so"; exit ${SANDBOX_START_ERROR_CODE}; }
out=$("$m" --bind "$r" /etc/resolv.conf 2>&1) || fail "cannot bind-mount the pod's resolv.conf over /etc/resolv.conf: $out"
if [ -n "$h" ]; then out=$("$m" --bind "$h" /etc/hosts 2>&1) || fail "cannot bind-mount the pod's hosts file over /etc/hosts: $out"; fi
if [ -n "$n" ]; then out=$( (printf '%s' "$n" > /proc/sys/kernel/hostname) 2>&1) || fail "cannot set the pod's hostname: $out"; fi
container_dev() {
  local d e
  exec {d}</dev || return
  local from=/proc/$BASHPID/fd/$d
  "$m" -t tmpfs -o nosuid,mode=755,size=1m tmpfs /dev || return
  for e in null zero full random urandom tty; do
    [ -e "$from/$e" ] || continue
    : > "/dev/$e" && "$m" --no-canonicalize --bind "$from/$e" "/dev/$e" || return
  done
  for e in pts shm mqueue "$from"/nvidia*; do
    e=\${e##*/}
    if [ -d "$from/$e" ]; then mkdir "/dev/$e"; elif [ -e "$from/$e" ]; then : > "/dev/$e"; else continue; fi || return
    "$m" --no-canonicalize --rbind "$from/$e" "/dev/$e" || return
  done
  ln -s pts/ptmx /dev/ptmx && ln -s /proc/self/fd /dev/fd && ln -s /proc/self/fd/0 /dev/stdin &&
    ln -s /proc/self/fd/1 /dev/stdout && ln -s /proc/self/fd/2 /dev/stderr
}
out=$(container_dev 2>&1) || fail "cannot make the container's /dev: $out"
fds=() targets=() modes=()
for ((i = 0; i < k; i++)); do
  exec {fd}<"$1" || fail "cannot open $1 to mount it at $2"
  fds+=("$fd") targets+=("$2") modes+=("$3")
  shift 3
done
for i in "\${!fds[@]}"; do
  t=\${targets[i]} src=/proc/$$/fd/\${fds[i]}
  if [ -d "$src" ]; then out=$(mkdir -p "$t" 2>&1); else out=$( (mkdir -p "$(dirname "$t")" && { [ -e "$t" ] || : > "$t"; }) 2>&1); fi ||
    fail "cannot create the mount point $t: $out"
  out=$("$m" --no-canonicalize --bind "$src" "$t" 2>&1) || fail "cannot bind-mount a volume at $t: $out"
  if [ "\${modes[i]}" = ro ]; then out=$("$m" -o remount,bind,ro "$t" 2>&1) || fail "cannot make the mount at $t read-only: $out"; fi
  eval "exec \${fds[i]}<&-"
done
if [ -n "$w" ]; then out=$( (mkdir -p "$w") 2>&1) && cd "$w" || fail "cannot enter the working directory $w: $out"; fi
: > "/proc/self/fd/$so"
exec {so}>&-
unset PWD
exec "$@"`;

/** The message left in the status file when unshare itself failed (the script never ran). */
export const UNSHARE_FAILED = 'cannot create the pod\'s mount and UTS namespaces with `unshare --mount --uts` ' +
  '(the node agent needs root, or CAP_SYS_ADMIN, for per-pod /etc/resolv.conf and volume mounts)';

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
  const mounts = files.mounts ?? [];
  return [
    tool('unshare'), '--mount', ...uts, '--propagation', 'private', '--', tool('bash'), '-c', SCRIPT, 'pod-sandbox',
    files.statusFile, files.resolvConf, files.hosts ?? '', files.hostname ?? '', tool('mount'), files.workingDir ?? '',
    String(mounts.length), ...mounts.flatMap((m) => [m.source, m.target, m.readOnly ? 'ro' : 'rw']), ...argv,
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
 * `onHost` says where a container path lies on this machine, for the check; the path returned is the container's.
 */
export function findExecutable(
  program: string,
  path: string | undefined,
  cwd: string,
  onHost: (containerPath: string) => string = (p) => p,
): string | undefined {
  if (program.includes('/')) {
    const full = isAbsolute(program) ? program : resolve(cwd, program);
    return executable(onHost(full)) ? full : undefined;
  }
  for (const dir of (path ?? '/usr/local/bin:/usr/bin:/bin').split(delimiter)) {
    const full = join(dir === '' ? cwd : resolve(cwd, dir), program);
    if (executable(onHost(full))) return full;
  }
  return undefined;
}
