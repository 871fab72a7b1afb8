// Pod networking on one machine without network namespaces. Linux routes all of 127.0.0.0/8 to `lo`, so
// any 127.x.y.z can be bound without configuration: each test cluster claims a block 127.B.0.0/16 (B from
// 100 up, skipping blocks anything on the machine already uses), serves cluster DNS on 127.B.0.10:53, and
// gives each node the pod addresses 127.B.n.1-254. What a pod sees of it is what a kubelet gives a pod: its
// own /etc/resolv.conf (cluster DNS, the search path, ndots:5) and /etc/hosts, and its hostname.
import { readFileSync } from 'node:fs';
import { networkInterfaces } from 'node:os';
import type { V1Pod } from '@kubernetes/client-node';

/** The nodes' own address (InternalIP, hostIP): the machine's. */
export const HOST_IP = '127.0.0.1';
export const CLUSTER_DOMAIN = 'cluster.local';
export const FIRST_BLOCK = 100;
export const LAST_BLOCK = 254;
/** The DNS server's address within a block, as kube-dns is 10.96.0.10 in a kubeadm cluster. */
export const DNS_HOST = '0.10';

export interface ClusterNetwork {
  /** Cluster DNS (UDP and TCP port 53): a kubelet's --cluster-dns. */
  dnsAddress: string;
  /** A kubelet's --cluster-domain. */
  clusterDomain: string;
  /** The loopback block this cluster owns on this machine, "127.B.0.0/16". */
  podCidr: string;
  /** A node's pod addresses, "127.B.n" (hosts .1 to .254); the same prefix for the same name every time. */
  nodePodPrefix(nodeName: string): string;
}

export function blockNetwork(block: number, clusterDomain = CLUSTER_DOMAIN): ClusterNetwork {
  const nodes = new Map<string, number>();
  return {
    dnsAddress: `127.${block}.${DNS_HOST}`,
    clusterDomain,
    podCidr: `127.${block}.0.0/16`,
    nodePodPrefix(nodeName) {
      let n = nodes.get(nodeName);
      if (n === undefined) {
        n = nodes.size + 1;
        if (n > 254) throw new Error('a test cluster has room for 254 nodes');
        nodes.set(nodeName, n);
      }
      return `127.${block}.${n}`;
    },
  };
}

/** IPv4 addresses of sockets in /proc/net/{tcp,udp}{,6}: "0100007F:0035" (little-endian) or its v4-mapped v6 form. */
function socketAddresses(): string[] {
  const addresses: string[] = [];
  for (const file of ['tcp', 'udp', 'tcp6', 'udp6']) {
    let text: string;
    try {
      text = readFileSync(`/proc/net/${file}`, 'utf8');
    } catch {
      continue;
    }
    for (const line of text.split('\n').slice(1)) {
      const fields = line.trim().split(/\s+/);
      // TIME_WAIT (06) is a closed connection's leftover (the last test's), not something using the address.
      if (file.startsWith('tcp') && fields[3] === '06') continue;
      const hex = fields[1]?.split(':')[0] ?? '';
      const v4 = hex.length === 8 ? hex : hex.length === 32 && hex.slice(0, 24) === '0000000000000000FFFF0000' ? hex.slice(24) : undefined;
      if (!v4) continue;
      const bytes = (v4.match(/../g) ?? []).map((b) => parseInt(b, 16)).reverse();
      addresses.push(bytes.join('.'));
    }
  }
  return addresses;
}

/** The second octets of 127.B.x.y addresses something on this machine binds or has on an interface. */
export function busyLoopbackBlocks(): Set<number> {
  const busy = new Set<number>();
  const interfaceAddresses = Object.values(networkInterfaces()).flatMap((list) => (list ?? []).map((a) => a.address));
  for (const address of [...socketAddresses(), ...interfaceAddresses]) {
    const m = /^127\.(\d+)\./.exec(address);
    if (m && m[1] !== '0') busy.add(Number(m[1]));
  }
  return busy;
}

/**
 * One node's pod addresses. Round-robin rather than lowest-free: an address just released (a finished
 * pod whose status still shows it) is the last to be handed out again.
 */
export class AddressPool {
  private readonly used = new Set<number>();
  private next = 1;

  constructor(readonly prefix: string) {}

  allocate(): string | undefined {
    for (let i = 0; i < 254; i += 1) {
      const host = ((this.next - 1 + i) % 254) + 1;
      if (this.used.has(host)) continue;
      this.used.add(host);
      this.next = (host % 254) + 1;
      return `${this.prefix}.${host}`;
    }
    return undefined;
  }

  release(address: string): void {
    if (!address.startsWith(`${this.prefix}.`)) return;
    this.used.delete(Number(address.slice(this.prefix.length + 1)));
  }

  get inUse(): number {
    return this.used.size;
  }
}

/** The pod's hostname as the kubelet sets it: spec.hostname, or the pod name cut to 63 characters. */
export function podHostname(pod: V1Pod): string {
  if (pod.spec?.hostname) return pod.spec.hostname;
  return (pod.metadata?.name ?? '').slice(0, 63).replace(/[-.]+$/, '');
}

/** The pod's /etc/resolv.conf, by dnsPolicy and dnsConfig, as the kubelet writes it. */
export function podResolvConf(pod: V1Pod, network: Pick<ClusterNetwork, 'dnsAddress' | 'clusterDomain'>, hostResolvConf: string): string {
  const spec = pod.spec;
  const namespace = pod.metadata?.namespace ?? 'default';
  const policy = spec?.dnsPolicy ?? 'ClusterFirst';
  let nameservers: string[] = [];
  let searches: string[] = [];
  let options: string[] = [];
  const clusterFirst = policy === 'ClusterFirstWithHostNet' || (policy === 'ClusterFirst' && !spec?.hostNetwork);
  if (clusterFirst) {
    const d = network.clusterDomain;
    nameservers = [network.dnsAddress];
    searches = [`${namespace}.svc.${d}`, `svc.${d}`, d];
    options = ['ndots:5'];
  } else if (policy !== 'None') {
    // Default (and ClusterFirst with hostNetwork): the node's own resolver configuration.
    for (const line of hostResolvConf.split('\n')) {
      const [key, ...values] = line.trim().split(/\s+/);
      if (key === 'nameserver') nameservers.push(...values);
      else if (key === 'search' || key === 'domain') searches = values;
      else if (key === 'options') options.push(...values);
    }
  }
  const config = spec?.dnsConfig;
  nameservers = [...new Set([...nameservers, ...(config?.nameservers ?? [])])].slice(0, 3);
  searches = [...new Set([...searches, ...(config?.searches ?? [])])];
  for (const { name, value } of config?.options ?? []) {
    if (!name) continue;
    options = options.filter((o) => o.split(':')[0] !== name);
    options.push(value === undefined ? name : `${name}:${value}`);
  }
  return [
    ...nameservers.map((n) => `nameserver ${n}`),
    ...(searches.length > 0 ? [`search ${searches.join(' ')}`] : []),
    ...(options.length > 0 ? [`options ${options.join(' ')}`] : []),
  ].join('\n') + '\n';
}

/** The kubelet-managed /etc/hosts: localhost, the pod's own names at its address, then spec.hostAliases. */
export function podHostsFile(pod: V1Pod, podIP: string, clusterDomain: string, hostHosts: string): string {
  const lines = ['# Kubernetes-managed hosts file.', '127.0.0.1\tlocalhost'];
  // ::1 localhost only where this machine has it: a pod here shares the machine's loopback interface.
  if (/^\s*::1\s.*\blocalhost\b/m.test(hostHosts)) lines.push('::1\tlocalhost ip6-localhost ip6-loopback');
  const hostname = podHostname(pod);
  const subdomain = pod.spec?.subdomain;
  const namespace = pod.metadata?.namespace ?? 'default';
  lines.push(subdomain ? `${podIP}\t${hostname}.${subdomain}.${namespace}.svc.${clusterDomain}\t${hostname}` : `${podIP}\t${hostname}`);
  const aliases = pod.spec?.hostAliases ?? [];
  if (aliases.length > 0) lines.push('', '# Entries added by HostAliases.');
  for (const alias of aliases) if (alias.ip) lines.push(`${alias.ip}\t${(alias.hostnames ?? []).join('\t')}`);
  return lines.join('\n') + '\n';
}
