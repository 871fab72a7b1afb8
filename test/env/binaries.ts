// Locates the test cluster's upstream binaries (kube-apiserver, kube-controller-manager, kube-scheduler,
// etcd, minio, helm), building them once with build-binaries.sh into a cache outside the repo.
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

export type UpstreamBinary = 'kube-apiserver' | 'kube-controller-manager' | 'kube-scheduler' | 'etcd' | 'minio' | 'helm';

let cached: string | undefined;

/** The directory holding every upstream binary; builds them the first time (minutes), then returns at once. */
export function binDir(): string {
  if (cached) return cached;
  const script = fileURLToPath(new URL('./build-binaries.sh', import.meta.url));
  // Test files, `npm run cluster` and CI may all ask at once on a fresh machine: one builds, the rest wait.
  const cache = process.env.CAPTIONRUN_CACHE ?? join(homedir(), '.cache', 'captionrun');
  mkdirSync(cache, { recursive: true });
  cached = execFileSync('flock', [join(cache, 'build.lock'), 'bash', script], {
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'inherit'],
  }).trim();
  return cached;
}

/** The Prometheus operator's CRD for a kind (ServiceMonitor, PodMonitor, PrometheusRule), fetched with the binaries. */
export function monitoringCrd(kind: 'servicemonitors' | 'podmonitors' | 'prometheusrules'): string {
  const path = join(binDir(), `monitoring.coreos.com_${kind}.yaml`);
  if (!existsSync(path)) throw new Error(`${path} is missing after build-binaries.sh; delete ${binDir()} and rerun it`);
  return path;
}

export function binary(name: UpstreamBinary): string {
  const path = join(binDir(), name);
  if (!existsSync(path)) throw new Error(`${path} is missing after build-binaries.sh; delete ${binDir()} and rerun it`);
  return path;
}
