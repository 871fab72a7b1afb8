// Plays the kubelet for N nodes in one process: registers each Node (with nvidia.com/gpu capacity) under its
// own system:node identity, keeps its Lease and Ready condition fresh, runs the pods the real scheduler binds
// to it as local processes (pod-runner.ts), each pod with its own loopback address from the node's range
// (pod-network.ts), writes their status back, serves `kubectl logs`, and finishes
// deletions the way the kubelet does. Fault injection: SIGKILL or OOM-kill a pod, fill its emptyDir, and cut a
// node off (no heartbeat, no API traffic) so the real node-lifecycle controller declares it lost.
import { mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  CoordinationV1Api, CoreV1Api, KubeConfig, ListWatch, PatchStrategy, V1MicroTime, Watch, setHeaderOptions,
  type V1Lease, type V1Node, type V1NodeCondition, type V1Pod, type V1PodCondition, type V1PodStatus,
} from '@kubernetes/client-node';
import { createLogger, type Logger } from '../../lib/telemetry/logger.js';
import type { Cluster } from './cluster.js';
import { defaultImages, type ImageMap } from './images.js';
import { startKubeletServer, type KubeletServer } from './kubelet-server.js';
import { freePort } from './minio.js';
import type { ObjectReader } from './pod-environment.js';
import { AddressPool, HOST_IP } from './pod-network.js';
import { PodRunner } from './pod-runner.js';
import { onProcessExit } from './processes.js';

export interface AgentNodeSpec {
  name: string;
  gpus?: number;
  cpu?: string;
  memory?: string;
  pods?: number;
  labels?: Record<string, string>;
}

export interface NodeAgentOptions {
  cluster: Pick<Cluster, 'nodeCredentials' | 'kubeletServing' | 'caPath' | 'network'>;
  nodes: AgentNodeSpec[];
  /** Container image -> local command; defaults to this checkout's CLI for captionrun images. */
  images?: ImageMap;
  /** Lease renewal period; the controller-manager's grace period must be a few of these. */
  leaseRenewMs?: number;
  nodeStatusMs?: number;
  logger?: Logger;
}

const LEASE_NAMESPACE = 'kube-node-lease';
const KUBELET_VERSION = 'v1.32.9';
const LIMIT_CHECK_MS = 1000;

class AgentNode {
  readonly core: CoreV1Api;
  readonly coordination: CoordinationV1Api;
  readonly runners = new Map<string, PodRunner>();
  readonly freeGpus: string[];
  readonly capacity: Record<string, string>;
  /** The node's pod addresses, 127.B.n.1-254 of the cluster's block: a CNI plugin's IPAM range. */
  readonly addresses: AddressPool;
  partitioned = false;
  uid = '';
  watch?: ListWatch<V1Pod>;
  server?: KubeletServer;

  constructor(
    readonly spec: AgentNodeSpec,
    readonly kc: KubeConfig,
    readonly port: number,
    readonly podsDir: string,
    podPrefix: string,
  ) {
    this.addresses = new AddressPool(podPrefix);
    this.core = kc.makeApiClient(CoreV1Api);
    this.coordination = kc.makeApiClient(CoordinationV1Api);
    this.freeGpus = Array.from({ length: spec.gpus ?? 0 }, (_, i) => String(i));
    this.capacity = {
      cpu: spec.cpu ?? '8',
      memory: spec.memory ?? '32Gi',
      pods: String(spec.pods ?? 110),
      'ephemeral-storage': '100Gi',
      'nvidia.com/gpu': String(spec.gpus ?? 0),
    };
  }

  get name(): string {
    return this.spec.name;
  }
}

function statusCode(err: unknown): number | undefined {
  return typeof err === 'object' && err !== null && 'code' in err && typeof err.code === 'number' ? err.code : undefined;
}

/** An API error in one line: client-node's messages carry every response header. */
function brief(err: unknown): string {
  const body = typeof err === 'object' && err !== null && 'body' in err && typeof err.body === 'string' ? err.body : '';
  try {
    const status = JSON.parse(body) as { message?: string };
    if (status.message) return `${statusCode(err)}: ${status.message}`;
  } catch {
    // not a Status body
  }
  return err instanceof Error ? err.message.split('\n')[0] ?? err.message : String(err);
}

export class NodeAgent {
  readonly nodes = new Map<string, AgentNode>();
  private readonly pushes = new Map<string, { tail: Promise<void>; queued: boolean }>();
  private readonly timers: NodeJS.Timeout[] = [];
  private stopped = false;
  private removeExitHook?: () => void;

  private constructor(
    private readonly options: NodeAgentOptions,
    readonly workDir: string,
    private readonly images: ImageMap,
    private readonly log: Logger,
  ) {}

  static async start(options: NodeAgentOptions): Promise<NodeAgent> {
    const log = options.logger ?? createLogger({ component: 'node-agent' });
    const workDir = mkdtempSync(join(tmpdir(), 'captionrun-nodes-'));
    const agent = new NodeAgent(options, workDir, options.images ?? defaultImages(), log);
    agent.removeExitHook = onProcessExit(() => rmSync(workDir, { recursive: true, force: true }));
    try {
      for (const spec of options.nodes) await agent.addNode(spec);
    } catch (err) {
      await agent.stop();
      throw err;
    }
    return agent;
  }

  private async addNode(spec: AgentNodeSpec): Promise<void> {
    const credentials = this.options.cluster.nodeCredentials(spec.name);
    const kc = new KubeConfig();
    kc.loadFromFile(credentials.kubeconfigPath);
    const podsDir = join(this.workDir, spec.name);
    mkdirSync(podsDir, { recursive: true });
    const node = new AgentNode(spec, kc, await freePort(), podsDir, this.options.cluster.network.nodePodPrefix(spec.name));
    this.nodes.set(spec.name, node);

    const serving = this.options.cluster.kubeletServing;
    node.server = await startKubeletServer(
      { cert: readFileSync(serving.certPath, 'utf8'), key: readFileSync(serving.keyPath, 'utf8'), ca: readFileSync(this.options.cluster.caPath, 'utf8') },
      node.port,
      {
        logPath: (ns, pod, container, previous) => this.findRunner(ns, pod, node)?.logPath(container, previous),
        running: (ns, pod, container) => this.findRunner(ns, pod, node)?.containerRunning(container) ?? false,
      },
    );
    await this.register(node);
    await this.renewLease(node);
    this.every(this.options.leaseRenewMs ?? 2000, () => this.renewLease(node), `lease ${node.name}`);
    this.every(this.options.nodeStatusMs ?? 5000, () => this.updateNodeStatus(node), `status ${node.name}`);
    this.every(LIMIT_CHECK_MS, () => {
      for (const runner of node.runners.values()) runner.enforceLimits();
    }, `limits ${node.name}`);
    this.watchPods(node);
    this.log.info({ node: node.name, kubeletPort: node.port, capacity: node.capacity, podAddresses: `${node.addresses.prefix}.1-254` }, 'node registered');
  }

  private every(ms: number, fn: () => Promise<void> | void, what: string): void {
    let busy = false;
    const timer = setInterval(() => {
      // A slow apiserver must not stack up renewals that then conflict with each other.
      if (busy) return;
      busy = true;
      Promise.resolve()
        .then(fn)
        .catch((err: unknown) => this.log.warn({ err: brief(err), what }, 'periodic node task failed'))
        .finally(() => (busy = false));
    }, ms);
    this.timers.push(timer);
  }

  private nodeConditions(previous: V1NodeCondition[] | undefined): V1NodeCondition[] {
    const now = new Date();
    const wanted: [string, string, string, string][] = [
      ['MemoryPressure', 'False', 'KubeletHasSufficientMemory', 'kubelet has sufficient memory available'],
      ['DiskPressure', 'False', 'KubeletHasNoDiskPressure', 'kubelet has no disk pressure'],
      ['PIDPressure', 'False', 'KubeletHasSufficientPID', 'kubelet has sufficient PID available'],
      ['Ready', 'True', 'KubeletReady', 'kubelet is posting ready status'],
    ];
    return wanted.map(([type, status, reason, message]) => {
      const old = previous?.find((c) => c.type === type);
      const transition = old && old.status === status && old.lastTransitionTime ? old.lastTransitionTime : now;
      return { type, status, reason, message, lastHeartbeatTime: now, lastTransitionTime: transition };
    });
  }

  private nodeStatus(node: AgentNode, previous?: V1Node['status']): NonNullable<V1Node['status']> {
    return {
      capacity: node.capacity,
      allocatable: node.capacity,
      conditions: this.nodeConditions(previous?.conditions),
      addresses: [{ type: 'InternalIP', address: HOST_IP }, { type: 'Hostname', address: node.name }],
      daemonEndpoints: { kubeletEndpoint: { Port: node.port } },
      nodeInfo: {
        architecture: process.arch === 'x64' ? 'amd64' : process.arch,
        bootID: '',
        containerRuntimeVersion: 'captionrun-node-agent://1',
        kernelVersion: '',
        kubeProxyVersion: '',
        kubeletVersion: KUBELET_VERSION,
        machineID: node.name,
        operatingSystem: 'linux',
        osImage: 'captionrun test node',
        systemUUID: node.name,
      },
    };
  }

  private async register(node: AgentNode): Promise<void> {
    const body: V1Node = {
      apiVersion: 'v1',
      kind: 'Node',
      metadata: {
        name: node.name,
        labels: {
          'kubernetes.io/hostname': node.name,
          'kubernetes.io/os': 'linux',
          'kubernetes.io/arch': process.arch === 'x64' ? 'amd64' : process.arch,
          ...node.spec.labels,
        },
      },
      status: this.nodeStatus(node),
    };
    try {
      node.uid = (await node.core.createNode({ body })).metadata?.uid ?? '';
    } catch (err) {
      if (statusCode(err) !== 409) throw err;
      node.uid = (await node.core.readNode({ name: node.name })).metadata?.uid ?? '';
    }
    await this.updateNodeStatus(node);
  }

  private async updateNodeStatus(node: AgentNode): Promise<void> {
    if (node.partitioned || this.stopped) return;
    let current: V1Node;
    try {
      current = await node.core.readNode({ name: node.name });
    } catch (err) {
      // Someone deleted the Node object: a kubelet registers again.
      if (statusCode(err) !== 404) throw err;
      await this.register(node);
      return;
    }
    // A patch rather than read-modify-write: NodeRestriction refuses any update from a node whose copy of
    // spec.taints differs from the stored one, and the node-lifecycle controller changes taints at any time.
    await node.core.patchNodeStatus(
      { name: node.name, body: { status: this.nodeStatus(node, current.status) } },
      setHeaderOptions('Content-Type', PatchStrategy.StrategicMergePatch),
    );
  }

  private async renewLease(node: AgentNode): Promise<void> {
    if (node.partitioned || this.stopped) return;
    const name = node.name;
    try {
      const lease = await node.coordination.readNamespacedLease({ name, namespace: LEASE_NAMESPACE });
      lease.spec = { ...lease.spec, holderIdentity: name, renewTime: new V1MicroTime() };
      await node.coordination.replaceNamespacedLease({ name, namespace: LEASE_NAMESPACE, body: lease });
    } catch (err) {
      if (statusCode(err) !== 404) throw err;
      const body: V1Lease = {
        metadata: { name, namespace: LEASE_NAMESPACE, ownerReferences: [{ apiVersion: 'v1', kind: 'Node', name, uid: node.uid }] },
        spec: { holderIdentity: name, leaseDurationSeconds: 40, renewTime: new V1MicroTime() },
      };
      await node.coordination.createNamespacedLease({ namespace: LEASE_NAMESPACE, body });
    }
  }

  private watchPods(node: AgentNode): void {
    const fieldSelector = `spec.nodeName=${node.name}`;
    const lw = new ListWatch<V1Pod>(
      '/api/v1/pods',
      new Watch(node.kc),
      () => node.core.listPodForAllNamespaces({ fieldSelector }),
      false,
      undefined,
      fieldSelector,
    );
    lw.on('add', (pod) => this.podChanged(node, pod));
    lw.on('update', (pod) => this.podChanged(node, pod));
    lw.on('delete', (pod) => this.podGone(node, pod));
    lw.on('error', (err) => {
      if (this.stopped) return;
      this.log.warn({ err: brief(err), node: node.name }, 'pod watch failed; restarting');
      setTimeout(() => void lw.start().catch(() => undefined), 1000);
    });
    node.watch = lw;
    void lw.start();
  }

  private podChanged(node: AgentNode, pod: V1Pod): void {
    if (node.partitioned || this.stopped) return;
    const uid = pod.metadata?.uid ?? '';
    const runner = node.runners.get(uid);
    if (pod.metadata?.deletionTimestamp) {
      if (runner && !runner.terminating) void this.finishDeletion(node, runner, pod);
      else if (!runner) void this.deleteNow(node, pod);
      return;
    }
    if (runner) {
      runner.pod = pod;
      return;
    }
    if (pod.status?.phase === 'Succeeded' || pod.status?.phase === 'Failed') return;
    const created = new PodRunner(pod, {
      nodeName: node.name,
      podsDir: node.podsDir,
      allocatable: node.capacity,
      images: this.images,
      reader: this.objectReader(node),
      allocateGpus: (count) => (node.freeGpus.length >= count ? node.freeGpus.splice(0, count) : undefined),
      releaseGpus: (indices) => node.freeGpus.push(...indices),
      network: {
        dnsAddress: this.options.cluster.network.dnsAddress,
        clusterDomain: this.options.cluster.network.clusterDomain,
        allocateAddress: () => node.addresses.allocate(),
        releaseAddress: (address) => node.addresses.release(address),
      },
      changed: (r) => void this.pushStatus(node, r),
      event: (r, type, reason, message, container) => void this.recordEvent(node, r, type, reason, message, container),
      log: this.log.child({ node: node.name }),
    });
    node.runners.set(uid, created);
    void created.start().catch((err: unknown) => {
      this.log.error({ err: brief(err), pod: created.name }, 'pod start failed');
      created.evict({ reason: 'StartError', message: String(err) });
    });
  }

  private podGone(node: AgentNode, pod: V1Pod): void {
    if (node.partitioned) return;
    const runner = node.runners.get(pod.metadata?.uid ?? '');
    if (!runner) return;
    node.runners.delete(runner.uid);
    this.pushes.delete(runner.uid);
    void runner.terminate(pod.spec?.terminationGracePeriodSeconds ?? 30).then(() => runner.cleanup());
  }

  /** The kubelet's side of a graceful delete: stop the containers, report, then remove the object. */
  private async finishDeletion(node: AgentNode, runner: PodRunner, pod: V1Pod): Promise<void> {
    const grace = pod.metadata?.deletionGracePeriodSeconds ?? pod.spec?.terminationGracePeriodSeconds ?? 30;
    await runner.terminate(grace);
    await this.pushStatus(node, runner);
    await this.deleteNow(node, pod);
    node.runners.delete(runner.uid);
    this.pushes.delete(runner.uid);
    runner.cleanup();
  }

  private async deleteNow(node: AgentNode, pod: V1Pod): Promise<void> {
    if (node.partitioned) return;
    const name = pod.metadata?.name ?? '';
    const namespace = pod.metadata?.namespace ?? 'default';
    try {
      await node.core.deleteNamespacedPod({
        name,
        namespace,
        gracePeriodSeconds: 0,
        body: { gracePeriodSeconds: 0, preconditions: { uid: pod.metadata?.uid } },
      });
    } catch (err) {
      if (![403, 404, 409].includes(statusCode(err) ?? 0)) this.log.warn({ err: brief(err), pod: name }, 'final pod delete failed');
    }
  }

  private async recordEvent(
    node: AgentNode,
    runner: PodRunner,
    type: 'Normal' | 'Warning',
    reason: string,
    message: string,
    container?: string,
  ): Promise<void> {
    if (node.partitioned || this.stopped) return;
    const now = new Date();
    try {
      await node.core.createNamespacedEvent({
        namespace: runner.namespace,
        body: {
          metadata: { generateName: `${runner.name}.`, namespace: runner.namespace },
          involvedObject: {
            apiVersion: 'v1',
            kind: 'Pod',
            name: runner.name,
            namespace: runner.namespace,
            uid: runner.uid,
            ...(container ? { fieldPath: `spec.containers{${container}}` } : {}),
          },
          type,
          reason,
          message,
          source: { component: 'kubelet', host: node.name },
          reportingComponent: 'kubelet',
          reportingInstance: node.name,
          firstTimestamp: now,
          lastTimestamp: now,
          count: 1,
        },
      });
    } catch (err) {
      this.log.warn({ err: brief(err), pod: runner.name, reason }, 'event not recorded');
    }
  }

  private objectReader(node: AgentNode): ObjectReader {
    const decode = (data: Record<string, string> | undefined): Record<string, string> =>
      Object.fromEntries(Object.entries(data ?? {}).map(([k, v]) => [k, Buffer.from(v, 'base64').toString('utf8')]));
    const orUndefined = async <T>(read: () => Promise<T>): Promise<T | undefined> => {
      try {
        return await read();
      } catch (err) {
        if (statusCode(err) === 404) return undefined;
        throw err;
      }
    };
    return {
      secret: async (namespace, name) => {
        const s = await orUndefined(() => node.core.readNamespacedSecret({ name, namespace }));
        return s && { ...decode(s.data), ...s.stringData };
      },
      configMap: async (namespace, name) => {
        const c = await orUndefined(() => node.core.readNamespacedConfigMap({ name, namespace }));
        return c && { ...c.data };
      },
      // The Node authorizer lets a node read a claim its pods use and the volume bound to it, nothing else.
      claimedPath: async (namespace, name) => {
        const claim = await orUndefined(() => node.core.readNamespacedPersistentVolumeClaim({ name, namespace }));
        if (!claim) throw new Error(`persistentvolumeclaim "${name}" not found`);
        const volumeName = claim.spec?.volumeName;
        if (!volumeName || claim.status?.phase !== 'Bound') throw new Error(`persistentvolumeclaim "${name}" is not bound`);
        const volume = await node.core.readPersistentVolume({ name: volumeName });
        const path = volume.spec?.hostPath?.path ?? volume.spec?.local?.path;
        if (!path) throw new Error(`persistentvolume "${volumeName}" is neither hostPath nor local, the only kinds this node mounts`);
        return path;
      },
    };
  }

  /** Queues a status write; writes that pile up while one is in flight collapse into one. */
  private pushStatus(node: AgentNode, runner: PodRunner): Promise<void> {
    let queue = this.pushes.get(runner.uid);
    if (!queue) {
      queue = { tail: Promise.resolve(), queued: false };
      this.pushes.set(runner.uid, queue);
    }
    if (queue.queued) return queue.tail;
    queue.queued = true;
    const q = queue;
    q.tail = q.tail.then(async () => {
      q.queued = false;
      await this.writeStatus(node, runner).catch((err: unknown) => this.log.warn({ err: brief(err), pod: runner.name }, 'pod status write failed'));
    });
    return q.tail;
  }

  private async writeStatus(node: AgentNode, runner: PodRunner): Promise<void> {
    for (let attempt = 0; attempt < 5; attempt += 1) {
      if (node.partitioned || this.stopped) return;
      let pod: V1Pod;
      try {
        pod = await node.core.readNamespacedPod({ name: runner.name, namespace: runner.namespace });
      } catch (err) {
        // The Node authorizer answers 403 rather than 404 once the pod is no longer bound to this node.
        if (statusCode(err) === 404 || statusCode(err) === 403) return;
        throw err;
      }
      if (pod.metadata?.uid !== runner.uid) return;
      pod.status = podStatus(pod.status ?? {}, runner);
      try {
        await node.core.replaceNamespacedPodStatus({ name: runner.name, namespace: runner.namespace, body: pod });
        return;
      } catch (err) {
        if (statusCode(err) !== 409) throw err;
      }
    }
  }

  private findRunner(namespace: string, name: string, only?: AgentNode): PodRunner | undefined {
    for (const node of only ? [only] : this.nodes.values()) {
      for (const runner of node.runners.values()) if (runner.namespace === namespace && runner.name === name) return runner;
    }
    return undefined;
  }

  private runnerOrThrow(namespace: string, name: string): PodRunner {
    const runner = this.findRunner(namespace, name);
    if (!runner) throw new Error(`pod ${namespace}/${name} is not running on any node of this agent`);
    return runner;
  }

  private nodeOrThrow(name: string): AgentNode {
    const node = this.nodes.get(name);
    if (!node) throw new Error(`no node ${name} in this agent (${[...this.nodes.keys()].join(', ')})`);
    return node;
  }

  /** SIGKILLs the pod's processes (one container or all): the container ends with 137, reason Error. */
  killPod(namespace: string, name: string, container?: string): void {
    if (this.runnerOrThrow(namespace, name).kill(container) === 0) throw new Error(`pod ${namespace}/${name} has no running container`);
  }

  /** Kills the pod's processes as the kernel OOM killer would: exit code 137, reason OOMKilled. */
  oomKillPod(namespace: string, name: string, container?: string): void {
    if (this.runnerOrThrow(namespace, name).kill(container, 'OOMKilled') === 0) throw new Error(`pod ${namespace}/${name} has no running container`);
  }

  /** Writes real bytes into one of the pod's volumes; past an emptyDir sizeLimit the pod is evicted. */
  fillDisk(namespace: string, name: string, volume: string, bytes: number): string {
    return this.runnerOrThrow(namespace, name).fillVolume(volume, bytes);
  }

  /** Cuts a node off: no lease renewals, no status, no reaction to API changes; its processes keep running. */
  stopHeartbeat(nodeName: string): void {
    this.nodeOrThrow(nodeName).partitioned = true;
    this.log.info({ node: nodeName }, 'node heartbeat stopped');
  }

  /** Reconnects a node: heartbeats resume, then it catches up with every change made while it was away. */
  async resumeHeartbeat(nodeName: string): Promise<void> {
    const node = this.nodeOrThrow(nodeName);
    node.partitioned = false;
    await this.renewLease(node);
    await this.updateNodeStatus(node);
    const known = new Set<string>();
    for (const pod of node.watch?.list() ?? []) {
      known.add(pod.metadata?.uid ?? '');
      this.podChanged(node, pod);
    }
    for (const runner of [...node.runners.values()]) {
      if (!known.has(runner.uid)) this.podGone(node, runner.pod);
      else void this.pushStatus(node, runner);
    }
    this.log.info({ node: nodeName }, 'node heartbeat resumed');
  }

  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    for (const timer of this.timers) clearInterval(timer);
    await Promise.all([...this.nodes.values()].map(async (node) => {
      await node.watch?.stop();
      await Promise.all([...node.runners.values()].map((r) => r.terminate(2)));
      await node.server?.close();
    }));
    rmSync(this.workDir, { recursive: true, force: true });
    this.removeExitHook?.();
  }
}

function upsertCondition(conditions: V1PodCondition[], wanted: V1PodCondition, now: Date): void {
  const i = conditions.findIndex((c) => c.type === wanted.type);
  const old = conditions[i];
  const next = { ...wanted, lastProbeTime: undefined, lastTransitionTime: old && old.status === wanted.status ? old.lastTransitionTime : now };
  if (i >= 0) conditions[i] = next;
  else conditions.push(next);
}

/** The pod status a kubelet would write for the runner, keeping conditions others own (PodScheduled, DisruptionTarget). */
function podStatus(existing: V1PodStatus, runner: PodRunner): V1PodStatus {
  const now = new Date();
  const phase = runner.phase();
  const containerStatuses = runner.containerStatuses();
  const terminal = phase === 'Succeeded' || phase === 'Failed';
  const unready = containerStatuses.filter((s) => !s.ready).map((s) => s.name);
  const ready = unready.length === 0 && !terminal;
  const notReady = terminal
    ? { reason: 'PodCompleted' }
    : { reason: 'ContainersNotReady', message: `containers with unready status: [${unready.join(' ')}]` };
  const conditions = [...(existing.conditions ?? [])];
  upsertCondition(conditions, { type: 'PodReadyToStartContainers', status: terminal ? 'False' : 'True' }, now);
  upsertCondition(conditions, { type: 'Initialized', status: 'True' }, now);
  upsertCondition(conditions, { type: 'ContainersReady', status: ready ? 'True' : 'False', ...(ready ? {} : notReady) }, now);
  upsertCondition(conditions, { type: 'Ready', status: ready ? 'True' : 'False', ...(ready ? {} : notReady) }, now);
  if (runner.eviction?.reason === 'Evicted') {
    upsertCondition(conditions, { type: 'DisruptionTarget', status: 'True', reason: 'TerminationByKubelet', message: runner.eviction.message }, now);
  }
  return {
    ...existing,
    phase,
    conditions,
    hostIP: HOST_IP,
    hostIPs: [{ ip: HOST_IP }],
    // Posted from the sandbox's creation on, Ready or not: cluster DNS answers for the pod from then.
    ...(runner.podIP ? { podIP: runner.podIP, podIPs: [{ ip: runner.podIP }] } : {}),
    startTime: existing.startTime ?? runner.startTime,
    containerStatuses,
    ...(runner.eviction ? { reason: runner.eviction.reason, message: runner.eviction.message } : {}),
  };
}
