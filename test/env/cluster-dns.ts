// Cluster DNS for the test cluster, answering the way CoreDNS's kubernetes plugin does in a real one, from
// pods and Services it watches through the apiserver with admin credentials:
//   <svc>.<ns>.svc.<domain>             a ClusterIP Service's clusterIP; a headless Service's endpoint pods;
//                                        an ExternalName Service's CNAME
//   <host>.<svc>.<ns>.svc.<domain>      the endpoint pod whose spec.hostname is <host> and spec.subdomain <svc>
//                                        (or whose address, dashed, is <host>)
//   <a-b-c-d>.<ns>.pod.<domain>         a-b-c-d as an address (CoreDNS's `pods insecure`)
// A pod is an endpoint of a Service that selects it once it has a podIP and while it is not terminal, if it
// is Ready and not being deleted, or at once and until it is gone if the Service has publishNotReadyAddresses
// (the endpoint controllers' rules). Anything else under the domain is NXDOMAIN with the zone's SOA; other
// names are NXDOMAIN too (not REFUSED): pods here have no outside names to look up, and a plain "not found"
// fails at once where REFUSED would read as a temporary failure that clients retry.
// It listens on UDP and TCP port 53 (glibc's resolver knows no other port) of 127.B.0.10, and that bind is
// also how a cluster claims the block 127.B.0.0/16 on this machine: a second cluster finds the port taken.
import { createSocket, type Socket } from 'node:dgram';
import { createServer, isIPv4, type Server, type Socket as TcpSocket } from 'node:net';
import { CoreV1Api, KubeConfig, ListWatch, Watch, type KubernetesObject, type V1Pod, type V1Service } from '@kubernetes/client-node';
import { createLogger, type Logger } from '../../lib/telemetry/logger.js';
import {
  DnsFormatError, RCODE, TYPE, UDP_MAX_BYTES, encodeError, encodeResponse, messageId, parseQuery, type DnsQuestion, type DnsRecord,
} from './dns-wire.js';
import { blockNetwork, busyLoopbackBlocks, CLUSTER_DOMAIN, FIRST_BLOCK, LAST_BLOCK, type ClusterNetwork } from './pod-network.js';
import { waitFor } from './wait.js';

export const DNS_PORT = 53;
/** CoreDNS's kubernetes plugin default; negative answers carry the same through the SOA minimum. */
const TTL_SECONDS = 5;
const TCP_IDLE_MS = 10_000;

export interface ClusterDnsOptions {
  kubeConfig: KubeConfig;
  clusterDomain?: string;
  logger?: Logger;
}

/** What a name is, before it is encoded: outside the zone, absent, or present with these records. */
export type DnsLookup =
  | { kind: 'outside' }
  | { kind: 'nxdomain' }
  | { kind: 'exists'; addresses: string[]; cname?: string };

export interface ClusterDns {
  address: string;
  network: ClusterNetwork;
  lookup(name: string): DnsLookup;
  stop(): Promise<void>;
}

const OUTSIDE: DnsLookup = { kind: 'outside' };
const NXDOMAIN: DnsLookup = { kind: 'nxdomain' };
const EMPTY: DnsLookup = { kind: 'exists', addresses: [] };

interface Informer<T extends KubernetesObject> {
  lw: ListWatch<T>;
  listed: () => boolean;
}

function informer<T extends KubernetesObject>(
  kc: KubeConfig,
  path: string,
  list: () => Promise<{ items: T[]; metadata?: { resourceVersion?: string } }>,
  stopped: () => boolean,
  log: Logger,
): Informer<T> {
  let listed = false;
  const lw = new ListWatch<T>(path, new Watch(kc), async () => {
    const result = await list();
    listed = true;
    return result;
  }, false);
  lw.on('error', (err) => {
    if (stopped()) return;
    // ListWatch stops on an error other than 410 Gone; the node agent restarts its pod watch the same way.
    log.warn({ err: err instanceof Error ? err.message : String(err), path }, 'cluster DNS watch failed; restarting');
    setTimeout(() => void lw.start().catch(() => undefined), 1000);
  });
  return { lw, listed: () => listed };
}

function selects(service: V1Service, pod: V1Pod): boolean {
  const selector = service.spec?.selector;
  if (!selector || Object.keys(selector).length === 0) return false;
  if (pod.metadata?.namespace !== service.metadata?.namespace) return false;
  const labels = pod.metadata?.labels ?? {};
  return Object.entries(selector).every(([k, v]) => labels[k] === v);
}

/** Whether the endpoint controllers list the pod as a ready address of the Service. */
function isEndpoint(service: V1Service, pod: V1Pod): boolean {
  if (!pod.status?.podIP) return false;
  if (pod.status.phase === 'Succeeded' || pod.status.phase === 'Failed') return false;
  if (service.spec?.publishNotReadyAddresses) return true;
  const ready = pod.status.conditions?.some((c) => c.type === 'Ready' && c.status === 'True') ?? false;
  return ready && !pod.metadata?.deletionTimestamp;
}

/** The name an endpoint answers to below its Service: its hostname when its subdomain is the Service. */
function endpointHostname(service: V1Service, pod: V1Pod): string | undefined {
  return pod.spec?.hostname && pod.spec.subdomain === service.metadata?.name ? pod.spec.hostname.toLowerCase() : undefined;
}

export class ClusterDnsServer implements ClusterDns {
  private stopped = false;
  private readonly pods: Informer<V1Pod>;
  private readonly services: Informer<V1Service>;
  private udp?: Socket;
  private tcp?: Server;
  address = '';
  network!: ClusterNetwork;

  constructor(
    kc: KubeConfig,
    readonly domain: string,
    private readonly log: Logger,
  ) {
    const core = kc.makeApiClient(CoreV1Api);
    this.pods = informer<V1Pod>(kc, '/api/v1/pods', () => core.listPodForAllNamespaces(), () => this.stopped, log);
    this.services = informer<V1Service>(kc, '/api/v1/services', () => core.listServiceForAllNamespaces(), () => this.stopped, log);
  }

  /** Starts the watches and waits for their first lists, so that the first answer is already right. */
  async sync(): Promise<void> {
    await Promise.all([this.pods.lw.start(), this.services.lw.start()]);
    await waitFor('cluster DNS to list pods and Services', () => (this.pods.listed() && this.services.listed() ? true : undefined), {
      timeoutMs: 30_000,
      intervalMs: 100,
    });
  }

  lookup(rawName: string): DnsLookup {
    const name = rawName.toLowerCase().replace(/\.$/, '');
    const d = this.domain;
    if (name !== d && !name.endsWith(`.${d}`)) return OUTSIDE;
    // Labels from the zone downwards: svc, <ns>, <svc>, <host>.
    const labels = name === d ? [] : name.slice(0, -(d.length + 1)).split('.').reverse();
    const [kind, namespace, second, third, ...more] = labels;
    if (kind === undefined) return EMPTY;
    if (kind === 'pod') {
      if (namespace === undefined || second === undefined) return EMPTY;
      const ip = second.replaceAll('-', '.');
      return third === undefined && isIPv4(ip) ? { kind: 'exists', addresses: [ip] } : NXDOMAIN;
    }
    if (kind !== 'svc') return NXDOMAIN;
    if (namespace === undefined) return EMPTY;
    const services = this.services.lw.list(namespace);
    if (second === undefined) return services.length > 0 || this.pods.lw.list(namespace).length > 0 ? EMPTY : NXDOMAIN;
    const service = services.find((s) => s.metadata?.name === second);
    if (!service || more.length > 0) return NXDOMAIN;
    const endpoints = this.pods.lw.list(namespace).filter((p) => selects(service, p) && isEndpoint(service, p));
    if (third !== undefined) {
      const addresses = endpoints
        .filter((p) => endpointHostname(service, p) === third || p.status?.podIP?.replaceAll('.', '-') === third)
        .map((p) => p.status?.podIP ?? '');
      return addresses.length > 0 ? { kind: 'exists', addresses: [...new Set(addresses)] } : NXDOMAIN;
    }
    if (service.spec?.type === 'ExternalName' && service.spec.externalName) {
      return { kind: 'exists', addresses: [], cname: service.spec.externalName.toLowerCase().replace(/\.$/, '') };
    }
    const clusterIP = service.spec?.clusterIP;
    if (clusterIP && clusterIP !== 'None') {
      return { kind: 'exists', addresses: (service.spec?.clusterIPs ?? [clusterIP]).filter((ip) => isIPv4(ip)) };
    }
    // Headless: the endpoints' addresses; none is NXDOMAIN, as CoreDNS answers for a headless Service.
    const addresses = [...new Set(endpoints.map((p) => p.status?.podIP ?? ''))];
    return addresses.length > 0 ? { kind: 'exists', addresses } : NXDOMAIN;
  }

  private soa(): DnsRecord {
    const d = this.domain;
    return {
      type: TYPE.SOA, name: d, ttl: TTL_SECONDS, mname: `ns.dns.${d}`, rname: `hostmaster.${d}`,
      serial: Math.floor(Date.now() / 1000) >>> 0, refresh: 7200, retry: 1800, expire: 86400, minimum: TTL_SECONDS,
    };
  }

  /** The answer to one message, or undefined for a message that must not be answered (a response). */
  answer(msg: Buffer, maxBytes: number): Buffer | undefined {
    // A response sent to us (QR set) is never answered: two servers must not bounce packets forever.
    if (msg.length < 3 || ((msg[2] ?? 0) & 0x80) !== 0) return undefined;
    let q: DnsQuestion;
    try {
      q = parseQuery(msg);
    } catch (err) {
      if (!(err instanceof DnsFormatError)) throw err;
      const id = messageId(msg);
      return id === undefined ? undefined : encodeError(id, RCODE.FORMERR);
    }
    if (q.opcode !== 0) return encodeError(q.id, RCODE.NOTIMP, q);
    let look: DnsLookup;
    try {
      look = q.class === 1 || q.class === TYPE.ANY ? this.lookup(q.name) : OUTSIDE;
    } catch (err) {
      this.log.error({ err: String(err), name: q.name }, 'cluster DNS lookup failed');
      return encodeError(q.id, RCODE.SERVFAIL, q);
    }
    this.log.debug({ name: q.name, type: q.type, answer: look }, 'cluster DNS query');
    if (look.kind === 'outside') return encodeResponse(q, { rcode: RCODE.NXDOMAIN, authoritative: false, answers: [], authority: [] }, maxBytes);
    if (look.kind === 'nxdomain') return encodeResponse(q, { rcode: RCODE.NXDOMAIN, authoritative: true, answers: [], authority: [this.soa()] }, maxBytes);
    const answers: DnsRecord[] = [];
    if (look.cname) answers.push({ type: TYPE.CNAME, name: q.name, ttl: TTL_SECONDS, target: look.cname });
    else if (q.type === TYPE.A || q.type === TYPE.ANY) {
      for (const address of look.addresses) answers.push({ type: TYPE.A, name: q.name, ttl: TTL_SECONDS, address });
    } else if (q.type === TYPE.SOA && q.name === this.domain) answers.push(this.soa());
    // No records of the asked type (AAAA, SRV, ...) is NOERROR with the SOA: the name exists, so a resolver
    // that asked for A and AAAA at once still takes the A answer.
    return encodeResponse(q, { rcode: RCODE.NOERROR, authoritative: true, answers, authority: answers.length > 0 ? [] : [this.soa()] }, maxBytes);
  }

  /** Binds UDP and TCP port 53 of 127.B.0.10 for the first free block B; the bind is the block's claim. */
  async listen(): Promise<void> {
    const busy = busyLoopbackBlocks();
    for (let block = FIRST_BLOCK; block <= LAST_BLOCK; block += 1) {
      if (busy.has(block)) continue;
      const network = blockNetwork(block, this.domain);
      const udp = createSocket({ type: 'udp4' });
      try {
        await new Promise<void>((resolve, reject) => {
          udp.once('error', reject);
          udp.bind({ address: network.dnsAddress, port: DNS_PORT, exclusive: true }, () => {
            udp.off('error', reject);
            resolve();
          });
        });
      } catch (err) {
        udp.close();
        if (errorCode(err) === 'EADDRINUSE') continue;
        throw bindError(err, network.dnsAddress);
      }
      const tcp = createServer((conn) => this.serveTcp(conn));
      try {
        await new Promise<void>((resolve, reject) => {
          tcp.once('error', reject);
          tcp.listen({ host: network.dnsAddress, port: DNS_PORT, exclusive: true }, () => {
            tcp.off('error', reject);
            resolve();
          });
        });
      } catch (err) {
        udp.close();
        tcp.close();
        if (errorCode(err) === 'EADDRINUSE') continue;
        throw bindError(err, network.dnsAddress);
      }
      udp.on('message', (msg, peer) => {
        const out = this.answer(msg, UDP_MAX_BYTES);
        if (out) udp.send(out, peer.port, peer.address);
      });
      udp.on('error', (err) => this.log.warn({ err: err.message }, 'cluster DNS UDP socket error'));
      tcp.on('error', (err) => this.log.warn({ err: err.message }, 'cluster DNS TCP server error'));
      this.udp = udp;
      this.tcp = tcp;
      this.address = network.dnsAddress;
      this.network = network;
      return;
    }
    throw new Error(`no free loopback block 127.${FIRST_BLOCK}-${LAST_BLOCK}.0.0/16 for cluster DNS (port ${DNS_PORT} taken on every 127.B.0.10)`);
  }

  /** DNS over TCP: each message is preceded by its 16-bit length; a connection may carry several. */
  private serveTcp(conn: TcpSocket): void {
    let buffered = Buffer.alloc(0);
    conn.setTimeout(TCP_IDLE_MS, () => conn.destroy());
    conn.on('error', () => conn.destroy());
    conn.on('data', (chunk: Buffer) => {
      buffered = Buffer.concat([buffered, chunk]);
      while (buffered.length >= 2) {
        const length = buffered.readUInt16BE(0);
        if (buffered.length < 2 + length) break;
        const out = this.answer(buffered.subarray(2, 2 + length), 65_535);
        buffered = buffered.subarray(2 + length);
        if (!out) continue;
        const prefix = Buffer.alloc(2);
        prefix.writeUInt16BE(out.length);
        conn.write(Buffer.concat([prefix, out]));
      }
    });
  }

  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    await Promise.all([this.pods.lw.stop(), this.services.lw.stop()]);
    this.udp?.close();
    await new Promise<void>((resolve) => (this.tcp ? this.tcp.close(() => resolve()) : resolve()));
  }
}

function errorCode(err: unknown): string | undefined {
  return typeof err === 'object' && err !== null && 'code' in err && typeof err.code === 'string' ? err.code : undefined;
}

function bindError(err: unknown, address: string): Error {
  const code = errorCode(err);
  if (code === 'EACCES' || code === 'EPERM') {
    return new Error(`cluster DNS cannot listen on ${address}:${DNS_PORT} (${code}): the test cluster needs root, as CI runs it, ` +
      'or CAP_NET_BIND_SERVICE for node (glibc\'s resolver only talks to port 53)');
  }
  return err instanceof Error ? err : new Error(String(err));
}

/** Claims a loopback block, binds its DNS address and syncs with the apiserver; stop() releases it all. */
export async function startClusterDns(options: ClusterDnsOptions): Promise<ClusterDns> {
  const log = options.logger ?? createLogger({ component: 'cluster-dns' });
  const server = new ClusterDnsServer(options.kubeConfig, options.clusterDomain ?? CLUSTER_DOMAIN, log);
  try {
    await server.listen();
    await server.sync();
  } catch (err) {
    await server.stop();
    throw err;
  }
  log.info({ address: server.address, podCidr: server.network.podCidr }, 'cluster DNS ready');
  return server;
}
