// One pod bound to a node of the agent, run as local processes: volumes as host directories, each container's
// command with its environment, restarts by restartPolicy, and the container states a kubelet would report.
// Faults (SIGKILL, OOM kill, eviction for a full emptyDir) go through the same exit path as natural exits.
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, readSync, readdirSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { V1Container, V1ContainerState, V1ContainerStatus, V1Pod, V1Volume } from '@kubernetes/client-node';
import type { Logger } from '../../lib/telemetry/logger.js';
import { containerArgv, resolveImage, type ImageMap } from './images.js';
import {
  ContainerConfigError, containerEnvironment, expandReferences, parseQuantity, resolveClusterNames, rewritePaths, type ObjectReader,
} from './pod-environment.js';
import { signalGroup, spawnGroup, stopGroup, type GroupProcess } from './processes.js';

export const POD_IP = '127.0.0.1';
const HOST_ENV = ['PATH', 'HOME', 'LANG', 'TMPDIR', 'TZ'];
const TERMINATION_MESSAGE_MAX = 4096;
const FALLBACK_LOG_LINES = 80;
const FALLBACK_LOG_BYTES = 2048;
const BACKOFF_MAX_MS = 10_000;

export interface RunnerHost {
  nodeName: string;
  podsDir: string;
  allocatable: Record<string, string>;
  images: ImageMap;
  reader: ObjectReader;
  /** GPU indices for a container, or undefined when the node has too few free (the kubelet's admission check). */
  allocateGpus(count: number): string[] | undefined;
  releaseGpus(indices: string[]): void;
  /** Called whenever the reportable status changed. */
  changed(runner: PodRunner): void;
  /** Records a Kubernetes Event on the pod, as the kubelet does for what `kubectl describe` should explain. */
  event(runner: PodRunner, type: 'Normal' | 'Warning', reason: string, message: string, container?: string): void;
  log: Logger;
}

type State =
  | { kind: 'waiting'; reason: string; message?: string }
  | { kind: 'running'; startedAt: Date }
  | { kind: 'terminated'; exitCode: number; reason: string; message?: string; startedAt: Date; finishedAt: Date };

class ContainerRun {
  restartCount = 0;
  state: State = { kind: 'waiting', reason: 'ContainerCreating' };
  lastTerminated?: State & { kind: 'terminated' };
  proc?: GroupProcess;
  oomRequested = false;
  restartTimer?: NodeJS.Timeout;
  gpus: string[] = [];
  constructor(
    readonly spec: V1Container,
    readonly dir: string,
  ) {}
  get logPath(): string {
    return join(this.dir, 'current.log');
  }
  get previousLogPath(): string {
    return join(this.dir, 'previous.log');
  }
  get terminationLogPath(): string {
    return join(this.dir, 'termination-log');
  }
}

export interface PodEviction {
  reason: string;
  message: string;
}

export class PodRunner {
  readonly uid: string;
  readonly namespace: string;
  readonly name: string;
  readonly dir: string;
  readonly containers: ContainerRun[];
  readonly volumes = new Map<string, { hostPath: string; spec: V1Volume }>();
  startTime = new Date();
  eviction?: PodEviction;
  terminating = false;
  private volumeRetry?: NodeJS.Timeout;
  private readonly log: Logger;

  constructor(
    public pod: V1Pod,
    private readonly host: RunnerHost,
  ) {
    this.uid = pod.metadata?.uid ?? '';
    this.namespace = pod.metadata?.namespace ?? 'default';
    this.name = pod.metadata?.name ?? '';
    this.dir = join(host.podsDir, `${this.namespace}_${this.name}_${this.uid}`);
    this.containers = (pod.spec?.containers ?? []).map((c) => new ContainerRun(c, join(this.dir, 'containers', c.name)));
    this.log = host.log.child({ pod: `${this.namespace}/${this.name}` });
  }

  get restartPolicy(): string {
    return this.pod.spec?.restartPolicy ?? 'Always';
  }

  /** Every container has terminated and none will restart: the pod's phase is final. */
  get finished(): boolean {
    return this.containers.every((c) => c.state.kind === 'terminated' && !c.restartTimer);
  }

  async start(): Promise<void> {
    mkdirSync(this.dir, { recursive: true });
    if ((this.pod.spec?.initContainers ?? []).length > 0) {
      this.evict({ reason: 'UnsupportedPodSpec', message: 'the test node agent does not run initContainers' });
      return;
    }
    for (const c of this.containers) {
      if (c.gpus.length > 0) continue;
      const count = parseQuantity(c.spec.resources?.limits?.['nvidia.com/gpu'] ?? c.spec.resources?.requests?.['nvidia.com/gpu'] ?? 0);
      if (count === 0) continue;
      const gpus = this.host.allocateGpus(count);
      if (!gpus) {
        this.evict({ reason: 'UnexpectedAdmissionError', message: `Allocate failed due to requested number of devices unavailable for nvidia.com/gpu. Requested: ${count}` });
        return;
      }
      c.gpus = gpus;
    }
    try {
      await this.prepareVolumes();
    } catch (err) {
      // The kubelet retries mounts (a Secret created after the pod); so do we, until the pod goes away.
      this.log.warn({ err: String(err) }, 'volume setup failed; retrying');
      this.host.event(this, 'Warning', 'FailedMount', String(err));
      for (const c of this.containers) c.state = { kind: 'waiting', reason: 'ContainerCreating', message: String(err) };
      this.host.changed(this);
      if (!this.terminating && !this.eviction) this.volumeRetry = setTimeout(() => void this.start(), 2000);
      return;
    }
    await Promise.all(this.containers.map((c) => this.startContainer(c)));
  }

  private async prepareVolumes(): Promise<void> {
    for (const volume of this.pod.spec?.volumes ?? []) {
      const hostPath = volume.hostPath?.path ?? join(this.dir, 'volumes', volume.name);
      mkdirSync(hostPath, { recursive: true });
      const files = await this.volumeFiles(volume);
      for (const [file, content] of Object.entries(files)) {
        mkdirSync(join(hostPath, file, '..'), { recursive: true });
        writeFileSync(join(hostPath, file), content);
      }
      this.volumes.set(volume.name, { hostPath, spec: volume });
    }
  }

  /** Files a secret, ConfigMap or projected volume holds; other volume types start empty. */
  private async volumeFiles(volume: V1Volume): Promise<Record<string, string>> {
    const sources = [
      ...(volume.secret ? [{ secret: { name: volume.secret.secretName, items: volume.secret.items, optional: volume.secret.optional } }] : []),
      ...(volume.configMap ? [{ configMap: volume.configMap }] : []),
      ...(volume.projected?.sources ?? []),
    ];
    const files: Record<string, string> = {};
    for (const source of sources) {
      const ref = source.secret ?? source.configMap;
      if (!ref?.name) continue;
      const data = source.secret
        ? await this.host.reader.secret(this.namespace, ref.name)
        : await this.host.reader.configMap(this.namespace, ref.name);
      if (!data) {
        if (ref.optional) continue;
        throw new Error(`${source.secret ? 'secret' : 'configmap'} "${ref.name}" not found`);
      }
      const items = ref.items ?? Object.keys(data).map((key) => ({ key, path: key }));
      for (const item of items) if (data[item.key] !== undefined) files[item.path] = data[item.key] ?? '';
    }
    return files;
  }

  /** Container paths (mounts, termination-message path) and the host paths they stand for. */
  private pathMap(c: ContainerRun): Map<string, string> {
    const paths = new Map<string, string>();
    for (const mount of c.spec.volumeMounts ?? []) {
      const volume = this.volumes.get(mount.name);
      if (volume) paths.set(mount.mountPath, mount.subPath ? join(volume.hostPath, mount.subPath) : volume.hostPath);
    }
    paths.set(c.spec.terminationMessagePath ?? '/dev/termination-log', c.terminationLogPath);
    return paths;
  }

  private async startContainer(c: ContainerRun): Promise<void> {
    if (this.terminating || this.eviction) return;
    mkdirSync(c.dir, { recursive: true });
    rmSync(c.terminationLogPath, { force: true });
    const runtime = resolveImage(this.host.images, c.spec.image ?? '');
    let env: Record<string, string>;
    try {
      env = await containerEnvironment(this.pod, c.spec, { podIP: POD_IP, hostIP: POD_IP }, this.host.allocatable, this.host.reader);
    } catch (err) {
      if (!(err instanceof ContainerConfigError)) throw err;
      // The kubelet keeps retrying a container whose secret or ConfigMap is missing; so do we.
      c.state = { kind: 'waiting', reason: 'CreateContainerConfigError', message: err.message };
      this.host.event(this, 'Warning', 'Failed', `Error: ${err.message}`, c.spec.name);
      this.host.changed(this);
      c.restartTimer = setTimeout(() => {
        c.restartTimer = undefined;
        void this.startContainer(c);
      }, 2000);
      return;
    }
    const paths = this.pathMap(c);
    const rewrite = (s: string): string => resolveClusterNames(rewritePaths(expandReferences(s, env), paths), POD_IP);
    const argv = containerArgv(runtime, c.spec.command?.map(rewrite), c.spec.args?.map(rewrite));
    const [program, ...args] = argv;
    const startedAt = new Date();
    if (!program) {
      this.exited(c, 128, startedAt, 'StartError', `no command specified and image ${c.spec.image} has no entrypoint on this node`);
      return;
    }
    const processEnv: NodeJS.ProcessEnv = {};
    for (const name of HOST_ENV) if (process.env[name] !== undefined) processEnv[name] = process.env[name];
    Object.assign(processEnv, runtime?.env, { HOSTNAME: this.name }, Object.fromEntries(Object.entries(env).map(([k, v]) => [k, resolveClusterNames(rewritePaths(v, paths), POD_IP)])));
    if (c.gpus.length > 0) processEnv.NVIDIA_VISIBLE_DEVICES = c.gpus.join(',');
    const cwd = c.spec.workingDir ? rewrite(c.spec.workingDir) : (runtime?.workingDir ?? c.dir);
    if (!existsSync(cwd)) mkdirSync(cwd, { recursive: true });

    const proc = spawnGroup(`${this.name}/${c.spec.name}`, program, args, { logPath: c.logPath, env: processEnv, cwd });
    c.proc = proc;
    let spawnError: Error | undefined;
    proc.child.once('error', (err) => (spawnError = err));
    c.state = { kind: 'running', startedAt };
    this.log.info({ container: c.spec.name, argv, pid: proc.pid }, 'container started');
    this.host.event(this, 'Normal', 'Started', `Started container ${c.spec.name}`, c.spec.name);
    this.host.changed(this);
    const code = await proc.exited;
    c.proc = undefined;
    if (spawnError) {
      this.exited(c, 128, startedAt, 'StartError', `failed to start ${program}: ${spawnError.message}`);
      return;
    }
    // A container's children die with it, as they would with its PID namespace.
    signalGroup(proc.pid, 'SIGKILL');
    const reason = c.oomRequested ? 'OOMKilled' : code === 0 ? 'Completed' : 'Error';
    this.exited(c, c.oomRequested ? 137 : code, startedAt, reason);
  }

  private exited(c: ContainerRun, exitCode: number, startedAt: Date, reason: string, startMessage?: string): void {
    c.oomRequested = false;
    const message = startMessage ?? this.terminationMessage(c, exitCode);
    c.state = { kind: 'terminated', exitCode, reason, startedAt, finishedAt: new Date(), ...(message ? { message } : {}) };
    this.log.info({ container: c.spec.name, exitCode, reason }, 'container exited');
    const restart = !this.terminating && !this.eviction &&
      (this.restartPolicy === 'Always' || (this.restartPolicy === 'OnFailure' && exitCode !== 0));
    if (restart) {
      const delay = Math.min(BACKOFF_MAX_MS, 1000 * 2 ** c.restartCount);
      this.host.event(this, 'Warning', 'BackOff', `Back-off ${delay / 1000}s restarting failed container ${c.spec.name}`, c.spec.name);
      c.restartTimer = setTimeout(() => {
        c.restartTimer = undefined;
        c.lastTerminated = c.state.kind === 'terminated' ? c.state : undefined;
        c.restartCount += 1;
        if (existsSync(c.logPath)) renameSync(c.logPath, c.previousLogPath);
        void this.startContainer(c);
      }, delay);
    } else if (c.gpus.length > 0) {
      this.host.releaseGpus(c.gpus);
      c.gpus = [];
    }
    this.host.changed(this);
  }

  private terminationMessage(c: ContainerRun, exitCode: number): string | undefined {
    const written = existsSync(c.terminationLogPath) ? readFileSync(c.terminationLogPath, 'utf8').slice(0, TERMINATION_MESSAGE_MAX) : '';
    if (written) return written;
    if (c.spec.terminationMessagePolicy === 'FallbackToLogsOnError' && exitCode !== 0) {
      return tailFile(c.logPath, FALLBACK_LOG_LINES, FALLBACK_LOG_BYTES) || undefined;
    }
    return undefined;
  }

  /** SIGKILLs a container's processes (all containers when none is named), as a crash or `kill -9` would. */
  kill(containerName?: string, reason: 'Error' | 'OOMKilled' = 'Error'): number {
    let killed = 0;
    for (const c of this.containers) {
      if ((containerName && c.spec.name !== containerName) || !c.proc) continue;
      c.oomRequested = reason === 'OOMKilled';
      signalGroup(c.proc.pid, 'SIGKILL');
      killed += 1;
    }
    return killed;
  }

  /** Stops every container: SIGTERM, SIGKILL after graceSeconds; no restarts afterwards. */
  async terminate(graceSeconds: number): Promise<void> {
    this.terminating = true;
    for (const c of this.containers) {
      if (c.proc) this.host.event(this, 'Normal', 'Killing', `Stopping container ${c.spec.name}`, c.spec.name);
    }
    clearTimeout(this.volumeRetry);
    for (const c of this.containers) {
      if (c.restartTimer) {
        clearTimeout(c.restartTimer);
        c.restartTimer = undefined;
        if (c.state.kind === 'waiting') c.state = { kind: 'terminated', exitCode: 0, reason: 'Completed', startedAt: new Date(), finishedAt: new Date() };
      }
    }
    await Promise.all(this.containers.map(async (c) => {
      if (c.proc) await stopGroup(c.proc, graceSeconds * 1000);
    }));
    // stopGroup resolves on the leader's exit; the exit handler that records the state runs right after.
    await new Promise((r) => setImmediate(r));
  }

  /** The kubelet's own eviction: kill at once, phase Failed with the reason, never restart. */
  evict(eviction: PodEviction): void {
    if (this.eviction) return;
    this.eviction = eviction;
    this.log.warn(eviction, 'pod evicted by the node');
    this.host.event(this, 'Warning', eviction.reason, eviction.message);
    for (const c of this.containers) {
      if (c.restartTimer) {
        clearTimeout(c.restartTimer);
        c.restartTimer = undefined;
      }
      if (c.proc) signalGroup(c.proc.pid, 'SIGKILL');
      else if (c.state.kind !== 'terminated') {
        c.state = { kind: 'terminated', exitCode: 137, reason: 'ContainerStatusUnknown', startedAt: new Date(), finishedAt: new Date() };
      }
    }
    this.host.changed(this);
  }

  /** Writes `bytes` of real data into an emptyDir volume, as a runaway writer would. */
  fillVolume(volumeName: string, bytes: number): string {
    const volume = this.volumes.get(volumeName);
    if (!volume) throw new Error(`pod ${this.namespace}/${this.name} has no volume ${volumeName}`);
    const path = join(volume.hostPath, `.fill-${Date.now()}`);
    const chunk = Buffer.alloc(Math.min(bytes, 1 << 20));
    const fd = openSync(path, 'w');
    try {
      for (let written = 0; written < bytes; written += chunk.length) {
        writeFileSync(fd, chunk.subarray(0, Math.min(chunk.length, bytes - written)));
      }
    } finally {
      closeSync(fd);
    }
    return path;
  }

  /** The kubelet's resource enforcement: emptyDir sizeLimit (eviction) and memory limits (OOM kill). */
  enforceLimits(): void {
    if (this.eviction || this.terminating) return;
    for (const [name, volume] of this.volumes) {
      const limit = volume.spec.emptyDir?.sizeLimit;
      if (limit === undefined) continue;
      if (directoryBytes(volume.hostPath) > parseQuantity(limit)) {
        this.evict({ reason: 'Evicted', message: `Usage of EmptyDir volume "${name}" exceeds the limit "${limit}". ` });
        return;
      }
    }
    for (const c of this.containers) {
      const limit = c.spec.resources?.limits?.memory;
      if (!c.proc || limit === undefined) continue;
      if (groupRssBytes(c.proc.pid) > parseQuantity(limit)) this.kill(c.spec.name, 'OOMKilled');
    }
  }

  phase(): 'Pending' | 'Running' | 'Succeeded' | 'Failed' {
    if (this.eviction && this.finished) return 'Failed';
    const states = this.containers.map((c) => c.state);
    if (states.some((s) => s.kind === 'running')) return 'Running';
    if (this.finished) {
      const allZero = states.every((s) => s.kind === 'terminated' && s.exitCode === 0);
      if (allZero) return 'Succeeded';
      return this.restartPolicy === 'Never' || this.terminating ? 'Failed' : 'Running';
    }
    return this.containers.some((c) => c.restartCount > 0 || c.restartTimer) ? 'Running' : 'Pending';
  }

  containerStatuses(): V1ContainerStatus[] {
    return this.containers.map((c) => ({
      name: c.spec.name,
      image: c.spec.image ?? '',
      imageID: `captionrun-local://${c.spec.image ?? ''}`,
      containerID: `captionrun://${this.uid}/${c.spec.name}/${c.restartCount}`,
      ready: c.state.kind === 'running',
      started: c.state.kind === 'running',
      restartCount: c.restartCount,
      state: toApiState(c.state),
      lastState: c.lastTerminated ? toApiState(c.lastTerminated) : {},
    }));
  }

  /** Log path of a container's current or previous run, for the kubelet log endpoint. */
  logPath(containerName: string, previous: boolean): string | undefined {
    const c = this.containers.find((x) => x.spec.name === containerName);
    if (!c) return undefined;
    return previous ? c.previousLogPath : c.logPath;
  }

  containerRunning(containerName: string): boolean {
    const c = this.containers.find((x) => x.spec.name === containerName);
    return !!c && (c.state.kind === 'running' || !!c.restartTimer);
  }

  cleanup(): void {
    for (const c of this.containers) {
      if (c.gpus.length > 0) this.host.releaseGpus(c.gpus);
      c.gpus = [];
    }
    rmSync(this.dir, { recursive: true, force: true });
  }
}

function toApiState(state: State): V1ContainerState {
  switch (state.kind) {
    case 'waiting':
      return { waiting: { reason: state.reason, ...(state.message ? { message: state.message } : {}) } };
    case 'running':
      return { running: { startedAt: state.startedAt } };
    case 'terminated':
      return {
        terminated: {
          exitCode: state.exitCode,
          reason: state.reason,
          startedAt: state.startedAt,
          finishedAt: state.finishedAt,
          ...(state.message ? { message: state.message } : {}),
        },
      };
  }
}

export function tailFile(path: string, lines: number, maxBytes: number): string {
  if (!existsSync(path)) return '';
  const size = statSync(path).size;
  const length = Math.min(size, maxBytes);
  const buf = Buffer.alloc(length);
  const fd = openSync(path, 'r');
  try {
    readSync(fd, buf, 0, length, size - length);
  } finally {
    closeSync(fd);
  }
  const text = buf.toString('utf8');
  const all = text.endsWith('\n') ? text.slice(0, -1).split('\n') : text.split('\n');
  return all.slice(-lines).join('\n');
}

function directoryBytes(dir: string): number {
  let total = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) total += directoryBytes(path);
    else if (entry.isFile()) total += statSync(path).size;
  }
  return total;
}

/** Resident memory of every process in a process group, from /proc. */
function groupRssBytes(pgid: number): number {
  let total = 0;
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      // Fields after the parenthesised command name: state ppid pgrp ... rss is the 22nd of them.
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      if (Number(fields[2]) === pgid) total += Number(fields[21]) * 4096;
    } catch {
      // The process exited while we looked.
    }
  }
  return total;
}
