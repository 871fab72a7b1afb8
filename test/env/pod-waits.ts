// Waiting on pods and nodes through the API, for tests and scripts that drive the test cluster.
import type { CoreV1Api, V1Node, V1Pod } from '@kubernetes/client-node';
import { waitFor } from './wait.js';

export async function readPodOrUndefined(core: CoreV1Api, namespace: string, name: string): Promise<V1Pod | undefined> {
  try {
    return await core.readNamespacedPod({ name, namespace });
  } catch (err) {
    if (typeof err === 'object' && err !== null && 'code' in err && err.code === 404) return undefined;
    throw err;
  }
}

export async function waitForPod(
  core: CoreV1Api,
  namespace: string,
  name: string,
  what: string,
  predicate: (pod: V1Pod) => boolean,
  timeoutMs = 60_000,
): Promise<V1Pod> {
  let last: V1Pod | undefined;
  return waitFor(`pod ${namespace}/${name} ${what}`, async () => {
    last = await readPodOrUndefined(core, namespace, name);
    return last && predicate(last) ? last : undefined;
  }, { timeoutMs, intervalMs: 250, detail: () => `last seen: ${JSON.stringify(last?.status ?? 'absent')}` });
}

export async function waitForPodGone(core: CoreV1Api, namespace: string, name: string, timeoutMs = 60_000): Promise<void> {
  await waitFor(`pod ${namespace}/${name} to be deleted`, async () =>
    (await readPodOrUndefined(core, namespace, name)) ? undefined : true, { timeoutMs, intervalMs: 250 });
}

export const isTerminal = (pod: V1Pod): boolean => pod.status?.phase === 'Succeeded' || pod.status?.phase === 'Failed';

export async function waitForNode(
  core: CoreV1Api,
  name: string,
  what: string,
  predicate: (node: V1Node) => boolean,
  timeoutMs = 60_000,
): Promise<V1Node> {
  let last: V1Node | undefined;
  return waitFor(`node ${name} ${what}`, async () => {
    last = await core.readNode({ name });
    return predicate(last) ? last : undefined;
  }, { timeoutMs, intervalMs: 250, detail: () => `last seen: ${JSON.stringify({ spec: last?.spec, conditions: last?.status?.conditions })}` });
}

export function nodeReadyStatus(node: V1Node): string | undefined {
  return node.status?.conditions?.find((c) => c.type === 'Ready')?.status;
}
