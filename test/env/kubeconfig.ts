// Kubeconfig files for the test cluster: one per identity (admin, controller-manager, scheduler, each node),
// all pointing at the same apiserver and trusting the same CA, so kubectl and helm work unchanged.
import { writeFileSync } from 'node:fs';
import { stringify } from 'yaml';
import type { KeyPair } from './certificates.js';

export function writeKubeconfig(path: string, server: string, caPath: string, user: string, credentials: KeyPair): void {
  const config = {
    apiVersion: 'v1',
    kind: 'Config',
    clusters: [{ name: 'captionrun-test', cluster: { server, 'certificate-authority': caPath } }],
    users: [{ name: user, user: { 'client-certificate': credentials.certPath, 'client-key': credentials.keyPath } }],
    contexts: [{ name: 'captionrun-test', context: { cluster: 'captionrun-test', user, namespace: 'default' } }],
    'current-context': 'captionrun-test',
  };
  writeFileSync(path, stringify(config), { mode: 0o600 });
}
