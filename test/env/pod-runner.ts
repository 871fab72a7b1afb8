// One pod bound to a node of the agent, run as local processes: volumes as host directories bind-mounted at
// their mount paths, a "sandbox" (the pod's own loopback address, resolv.conf, hosts file and hostname,
// pod-network.ts and pod-sandbox.ts), each container's command with its environment, restarts by
// restartPolicy, and the container states a kubelet would report. Faults (SIGKILL, OOM kill, eviction for a
// full emptyDir) go through the same exit path as natural exits.
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, readSync, readdirSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { hostname as machineHostname } from 'node:os';
import { join, resolve } from 'node:path';
import type { V1Container, V1ContainerState, V1ContainerStatus, V1Pod, V1Volume } from '@kubernetes/client-node';
import type { Logger } from '../../lib/telemetry/logger.js';
import { containerArgv, resolveImage, type ImageMap, type ImageRuntime } from './images.js';
import { ContainerConfigError, containerEnvironment, expandReferences, parseQuantity, type ObjectReader } from './pod-environment.js';
import { HOST_IP, podHostname, podHostsFile, podResolvConf } from './pod-network.js';
import {
  findExecutable, SANDBOX_START_ERROR_CODE, sandboxArgv, UNSHARE_FAILED, type SandboxFiles, type SandboxMount,
} from './pod-sandbox.js';
import { signalGroup, spawnGroup, stopGroup, type GroupProcess } from './processes.js';

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
  /** The node's pod addresses and the cluster's DNS, as a CNI plugin and the kubelet's --cluster-dns give them. */
  network: {
    dnsAddress: string;
    clusterDomain: string;
    /** A free address of the node's range, or undefined when all are taken. */
    allocateAddress(): string | undefined;
    releaseAddress(address: string): void;
  };
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
  get sandboxStatusPath(): string {
    return join(this.dir, 'sandbox-status');
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
  /** The pod's address, from sandbox creation on; still reported after it was released, as the kubelet does. */
  podIP?: string;
  private addressHeld = false;
  private sandbox?: Omit<SandboxFiles, 'statusFile'>;
  private retryTimer?: NodeJS.Timeout;
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
      if (!this.terminating && !this.eviction) this.retryTimer = setTimeout(() => void this.start(), 2000);
      return;
    }
    if (!this.createSandbox()) {
      if (!this.terminating && !this.eviction) this.retryTimer = setTimeout(() => void this.start(), 2000);
      return;
    }
    await Promise.all(this.containers.map((c) => this.startContainer(c)));
  }

  get hostNetwork(): boolean {
    return this.pod.spec?.hostNetwork === true;
  }

  /**
   * The pod's address and the files every container of it sees as /etc/resolv.conf and /etc/hosts, made once
   * (as the kubelet makes a pod sandbox once) and kept across container restarts. False when the node has
   * no free address; the kubelet retries a sandbox that failed, and so do we.
   */
  private createSandbox(): boolean {
    if (this.sandbox) return true;
    if (this.hostNetwork) {
      this.podIP = HOST_IP;
    } else {
      const address = this.host.network.allocateAddress();
      if (!address) {
        const message = 'failed to create pod sandbox: no free address left in the node\'s pod range';
        this.host.event(this, 'Warning', 'FailedCreatePodSandBox', message);
        for (const c of this.containers) c.state = { kind: 'waiting', reason: 'ContainerCreating', message };
        this.host.changed(this);
        return false;
      }
      this.podIP = address;
      this.addressHeld = true;
    }
    const etc = join(this.dir, 'etc');
    mkdirSync(etc, { recursive: true });
    const resolvConf = join(etc, 'resolv.conf');
    writeFileSync(resolvConf, podResolvConf(this.pod, this.host.network, readOrEmpty('/etc/resolv.conf')));
    if (this.hostNetwork) {
      // A hostNetwork pod keeps the machine's hostname and hosts file, plus its hostAliases: the kubelet's rule.
      const aliases = (this.pod.spec?.hostAliases ?? []).filter((a) => a.ip).map((a) => `${a.ip}\t${(a.hostnames ?? []).join('\t')}`);
      const hosts = aliases.length > 0 ? join(etc, 'hosts') : undefined;
      if (hosts) writeFileSync(hosts, `${readOrEmpty('/etc/hosts')}\n# Entries added by HostAliases.\n${aliases.join('\n')}\n`);
      this.sandbox = { resolvConf, ...(hosts ? { hosts } : {}) };
    } else {
      const hosts = join(etc, 'hosts');
      writeFileSync(hosts, podHostsFile(this.pod, this.podIP, this.host.network.clusterDomain, readOrEmpty('/etc/hosts')));
      this.sandbox = { resolvConf, hosts, hostname: podHostname(this.pod) };
    }
    this.log.info({ podIP: this.podIP }, 'pod sandbox created');
    return true;
  }

  /** Gives the pod's address back once no process of the pod can use it any more. */
  private releaseAddress(): void {
    if (!this.addressHeld || !this.podIP) return;
    this.addressHeld = false;
    this.host.network.releaseAddress(this.podIP);
  }

  private async prepareVolumes(): Promise<void> {
    for (const volume of this.pod.spec?.volumes ?? []) {
      const claim = volume.persistentVolumeClaim?.claimName;
      const hostPath = volume.hostPath?.path
        ?? (claim !== undefined ? await this.host.reader.claimedPath(this.namespace, claim) : join(this.dir, 'volumes', volume.name));
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

  /**
   * What the container sees at which path, parents before children (as containerd orders mounts): its
   * volumes, its termination-message file, and the image's own files wherever a volume would hide them. In a
   * real image those live in its root file system, apart from any volume; here the checkout may lie under
   * /tmp, where every captionrun worker mounts an emptyDir.
   */
  private mounts(c: ContainerRun, runtime: ImageRuntime | undefined): SandboxMount[] {
    const mounts: SandboxMount[] = [];
    for (const mount of c.spec.volumeMounts ?? []) {
      const volume = this.volumes.get(mount.name);
      if (!volume) throw new Error(`volumeMount ${mount.name} names no volume of the pod`);
      const source = mount.subPath ? join(volume.hostPath, mount.subPath) : volume.hostPath;
      // The kubelet creates a subPath that does not exist yet.
      if (!existsSync(source)) mkdirSync(source, { recursive: true });
      mounts.push({ source, target: resolve(mount.mountPath), readOnly: mount.readOnly === true });
    }
    const depth = (path: string): number => path.split('/').length;
    mounts.sort((a, b) => depth(a.target) - depth(b.target));
    for (const path of runtime?.files ?? []) {
      if (mounts.some((m) => isWithin(path, m.target))) mounts.push({ source: path, target: path, readOnly: false });
    }
    writeFileSync(c.terminationLogPath, '');
    mounts.push({ source: c.terminationLogPath, target: c.spec.terminationMessagePath ?? '/dev/termination-log', readOnly: false });
    return mounts;
  }

  private async startContainer(c: ContainerRun): Promise<void> {
    if (this.terminating || this.eviction) return;
    mkdirSync(c.dir, { recursive: true });
    rmSync(c.terminationLogPath, { force: true });
    const runtime = resolveImage(this.host.images, c.spec.image ?? '');
    let env: Record<string, string>;
    try {
      env = await containerEnvironment(this.pod, c.spec, { podIP: this.podIP ?? '', hostIP: HOST_IP }, this.host.allocatable, this.host.reader);
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
    const expand = (s: string): string => expandReferences(s, env);
    const argv = containerArgv(runtime, c.spec.command?.map(expand), c.spec.args?.map(expand));
    const [program, ...args] = argv;
    const startedAt = new Date();
    if (!program) {
      this.exited(c, 128, startedAt, 'StartError', `no command specified and image ${c.spec.image} has no entrypoint on this node`);
      return;
    }
    const processEnv: NodeJS.ProcessEnv = {};
    for (const name of HOST_ENV) if (process.env[name] !== undefined) processEnv[name] = process.env[name];
    // HOSTNAME as a container runtime sets it: the pod's hostname (the machine's with hostNetwork).
    const hostname = this.hostNetwork ? machineHostname() : podHostname(this.pod);
    Object.assign(processEnv, runtime?.env, { HOSTNAME: hostname }, env);
    if (c.gpus.length > 0) processEnv.NVIDIA_VISIBLE_DEVICES = c.gpus.join(',');
    let mounts: SandboxMount[];
    try {
      mounts = this.mounts(c, runtime);
    } catch (err) {
      this.exited(c, 128, startedAt, 'StartError', String(err));
      return;
    }
    const workingDir = c.spec.workingDir ? expand(c.spec.workingDir) : runtime?.workingDir;
    // The lookup runs here, before the mounts exist: a program inside a volume is looked up in its host directory.
    const executable = findExecutable(program, processEnv.PATH, workingDir ?? c.dir, (path) => onHost(path, mounts));
    if (!executable) {
      // containerd's words for it; the program would otherwise be a 127 from the sandbox script.
      this.exited(c, 128, startedAt, 'StartError', `exec: "${program}": executable file not found in $PATH`);
      return;
    }
    if (!this.sandbox) throw new Error(`pod ${this.namespace}/${this.name}: container started before its sandbox`);
    writeFileSync(c.sandboxStatusPath, UNSHARE_FAILED);
    const files = { ...this.sandbox, mounts, statusFile: c.sandboxStatusPath, ...(workingDir ? { workingDir } : {}) };
    const [launcher = '', ...launcherArgs] = sandboxArgv(files, [executable, ...args]);

    const proc = spawnGroup(`${this.name}/${c.spec.name}`, launcher, launcherArgs, { logPath: c.logPath, env: processEnv, cwd: c.dir });
    c.proc = proc;
    let spawnError: Error | undefined;
    proc.child.once('error', (err) => (spawnError = err));
    // Running, as a runtime reports it, once the program itself runs: a signal sent while the sandbox script
    // still mounts would end the script, never reaching the program's handlers.
    if (await execReached(c.sandboxStatusPath, proc.exited)) {
      c.state = { kind: 'running', startedAt };
      this.log.info({ container: c.spec.name, argv, pid: proc.pid }, 'container started');
      this.host.event(this, 'Normal', 'Started', `Started container ${c.spec.name}`, c.spec.name);
      this.host.changed(this);
    }
    const code = await proc.exited;
    c.proc = undefined;
    if (spawnError) {
      this.exited(c, 128, startedAt, 'StartError', `cannot create the pod's sandbox: failed to start ${launcher}: ${spawnError.message}`);
      return;
    }
    // A container's children die with it, as they would with its PID namespace.
    signalGroup(proc.pid, 'SIGKILL');
    // Past 128 a signal ended it (ours, or a kill before the exec): the sandbox's own failures exit 1 (unshare) or 128.
    const sandboxFailure = code <= SANDBOX_START_ERROR_CODE ? readOrEmpty(c.sandboxStatusPath).trim() : '';
    if (sandboxFailure) {
      const detail = sandboxFailure === UNSHARE_FAILED ? tailFile(c.logPath, 1, 512) : '';
      this.exited(c, SANDBOX_START_ERROR_CODE, startedAt, 'StartError', detail ? `${sandboxFailure}: ${detail}` : sandboxFailure);
      return;
    }
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
    // The kubelet tears the sandbox down, giving its address back, once the pod's last container is done for good.
    if (this.finished) this.releaseAddress();
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
    clearTimeout(this.retryTimer);
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
    if (this.finished) this.releaseAddress();
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
    if (this.finished) this.releaseAddress();
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
    this.releaseAddress();
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

const EXEC_POLL_MS = 10;

/** Whether the sandbox got as far as exec'ing the program: it empties its status file just before. */
async function execReached(statusFile: string, exited: Promise<number>): Promise<boolean> {
  let over = false;
  void exited.then(() => (over = true));
  const emptied = (): boolean => statSync(statusFile, { throwIfNoEntry: false })?.size === 0;
  while (!over && !emptied()) await new Promise((r) => setTimeout(r, EXEC_POLL_MS));
  return emptied();
}

function isWithin(path: string, dir: string): boolean {
  return path === dir || path.startsWith(dir.endsWith('/') ? dir : `${dir}/`);
}

/** The host path behind a container path: the deepest mount holding it, or the machine's own path. */
function onHost(path: string, mounts: SandboxMount[]): string {
  const mount = mounts.findLast((m) => isWithin(path, m.target));
  return mount ? join(mount.source, path.slice(mount.target.length)) : path;
}

function readOrEmpty(path: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return '';
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
