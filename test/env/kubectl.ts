// Runs the real kubectl against a test cluster, the way a user would, and returns what it printed.
import { spawn } from 'node:child_process';
import { waitFor } from './wait.js';

export interface KubectlResult {
  code: number;
  stdout: string;
  stderr: string;
}

export const KUBECTL = process.env.KUBECTL ?? 'kubectl';

export async function kubectl(kubeconfigPath: string, args: string[], input?: string): Promise<KubectlResult> {
  const child = spawn(KUBECTL, ['--kubeconfig', kubeconfigPath, ...args], { stdio: ['pipe', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  child.stdin.end(input ?? '');
  const code = await new Promise<number>((resolve, reject) => {
    child.once('error', reject);
    child.once('close', (c) => resolve(c ?? 1));
  });
  return { code, stdout, stderr };
}

/**
 * Waits until a CRD is Established. `kubectl wait --for=condition=Established` right after `apply` can fail
 * at once ("status.conditions accessor error") while the apiserver has not yet written any condition.
 */
export async function waitForCrdEstablished(kubeconfigPath: string, crdName: string, timeoutMs = 60_000): Promise<void> {
  await waitFor(`CRD ${crdName} to be Established`, async () => {
    const res = await kubectl(kubeconfigPath, [
      'get', 'crd', crdName, '-o', 'jsonpath={.status.conditions[?(@.type=="Established")].status}',
    ]);
    return res.stdout === 'True' ? true : undefined;
  }, { timeoutMs });
}
