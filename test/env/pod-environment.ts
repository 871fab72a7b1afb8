// A container's environment as the kubelet builds it: envFrom, then env (later wins), secret and ConfigMap
// keys, the downward API (fieldRef, resourceFieldRef), and $(VAR) references expanded the way Kubernetes does.
// Values reach the process as written: volumes are mounted at their container paths (pod-sandbox.ts) and
// names resolve through cluster DNS (cluster-dns.ts).
import type { V1Container, V1Pod } from '@kubernetes/client-node';

export interface ObjectReader {
  /** The decoded data of a Secret, or undefined when it does not exist. */
  secret(namespace: string, name: string): Promise<Record<string, string> | undefined>;
  configMap(namespace: string, name: string): Promise<Record<string, string> | undefined>;
  /** The host directory of the PersistentVolume a claim is bound to; throws while it is unbound or not local. */
  claimedPath(namespace: string, claimName: string): Promise<string>;
}

export interface PodAddresses {
  podIP: string;
  hostIP: string;
}

/** A reason the kubelet reports while a container cannot be configured; it keeps retrying. */
export class ContainerConfigError extends Error {}

const SUFFIXES: Record<string, number> = {
  n: 1e-9, u: 1e-6, m: 1e-3, '': 1, k: 1e3, M: 1e6, G: 1e9, T: 1e12, P: 1e15, E: 1e18,
  Ki: 2 ** 10, Mi: 2 ** 20, Gi: 2 ** 30, Ti: 2 ** 40, Pi: 2 ** 50, Ei: 2 ** 60,
};

/** A Kubernetes resource quantity ("500m", "4Gi", "1e3") as a number. */
export function parseQuantity(quantity: string | number): number {
  if (typeof quantity === 'number') return quantity;
  const match = /^([+-]?[0-9.]+(?:[eE][+-]?[0-9]+)?)([a-zA-Z]*)$/.exec(quantity.trim());
  const factor = match ? SUFFIXES[match[2] ?? ''] : undefined;
  if (!match || factor === undefined) throw new Error(`not a quantity: ${quantity}`);
  return Number(match[1]) * factor;
}

function fieldRefValue(pod: V1Pod, addresses: PodAddresses, path: string): string {
  const meta = pod.metadata ?? {};
  const keyed = /^metadata\.(labels|annotations)\['(.+)'\]$/.exec(path);
  if (keyed) return (keyed[1] === 'labels' ? meta.labels : meta.annotations)?.[keyed[2] ?? ''] ?? '';
  switch (path) {
    case 'metadata.name': return meta.name ?? '';
    case 'metadata.namespace': return meta.namespace ?? '';
    case 'metadata.uid': return meta.uid ?? '';
    case 'spec.nodeName': return pod.spec?.nodeName ?? '';
    case 'spec.serviceAccountName': return pod.spec?.serviceAccountName ?? '';
    case 'status.podIP': case 'status.podIPs': return addresses.podIP;
    case 'status.hostIP': case 'status.hostIPs': return addresses.hostIP;
    default: throw new ContainerConfigError(`unsupported fieldRef ${path}`);
  }
}

function resourceFieldValue(container: V1Container, allocatable: Record<string, string>, resource: string, divisor?: string): string {
  const [kind, name = ''] = resource.split(/\.(.*)/s);
  const value = (kind === 'limits' ? container.resources?.limits?.[name] : container.resources?.requests?.[name])
    ?? container.resources?.limits?.[name] ?? allocatable[name] ?? '0';
  return String(Math.ceil(parseQuantity(value) / parseQuantity(divisor ?? '1')));
}

/** Expands $(NAME) from vars; $$ escapes a literal $; unknown references stay as written. */
export function expandReferences(value: string, vars: Record<string, string>): string {
  return value.replace(/\$\$|\$\(([A-Za-z_][A-Za-z0-9_.-]*)\)/g, (whole, name: string | undefined) =>
    name === undefined ? '$' : (vars[name] ?? whole));
}

export async function containerEnvironment(
  pod: V1Pod,
  container: V1Container,
  addresses: PodAddresses,
  allocatable: Record<string, string>,
  reader: ObjectReader,
): Promise<Record<string, string>> {
  const namespace = pod.metadata?.namespace ?? 'default';
  const env: Record<string, string> = {};
  for (const source of container.envFrom ?? []) {
    const ref = source.secretRef ?? source.configMapRef;
    if (!ref?.name) continue;
    const data = source.secretRef ? await reader.secret(namespace, ref.name) : await reader.configMap(namespace, ref.name);
    if (!data) {
      if (ref.optional) continue;
      throw new ContainerConfigError(`${source.secretRef ? 'secret' : 'configmap'} "${ref.name}" not found`);
    }
    for (const [k, v] of Object.entries(data)) env[`${source.prefix ?? ''}${k}`] = v;
  }
  for (const variable of container.env ?? []) {
    const from = variable.valueFrom;
    if (!from) {
      env[variable.name] = expandReferences(variable.value ?? '', env);
    } else if (from.fieldRef) {
      env[variable.name] = fieldRefValue(pod, addresses, from.fieldRef.fieldPath);
    } else if (from.resourceFieldRef) {
      env[variable.name] = resourceFieldValue(container, allocatable, from.resourceFieldRef.resource, from.resourceFieldRef.divisor);
    } else {
      const ref = from.secretKeyRef ?? from.configMapKeyRef;
      if (!ref) continue;
      const kind = from.secretKeyRef ? 'secret' : 'configmap';
      const data = from.secretKeyRef ? await reader.secret(namespace, ref.name ?? '') : await reader.configMap(namespace, ref.name ?? '');
      const value = data?.[ref.key];
      if (value === undefined) {
        if (ref.optional) continue;
        throw new ContainerConfigError(data ? `couldn't find key ${ref.key} in ${kind} ${namespace}/${ref.name}` : `${kind} "${ref.name}" not found`);
      }
      env[variable.name] = value;
    }
  }
  return env;
}
