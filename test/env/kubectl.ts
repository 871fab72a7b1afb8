// Runs the real kubectl against a test cluster, the way a user would, and returns what it printed.
import { spawn } from 'node:child_process';

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
