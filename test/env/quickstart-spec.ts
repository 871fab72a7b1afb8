// The cluster quickstart (manifests/examples/quickstart-cluster.yaml) made ready to apply on a test
// cluster: its S3 endpoint is the cluster's MinIO (whose port changes with every start) and its Secret the
// one the environment created. The example's comments stay, so the written file still explains itself.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseDocument } from 'yaml';
import { REPO_ROOT } from './images.js';

export const QUICKSTART_CLUSTER_SPEC = join(REPO_ROOT, 'manifests/examples/quickstart-cluster.yaml');
/** The bucket the example names; the environment creates it. */
export const QUICKSTART_BUCKET = 'captionrun-checkpoints';

export function quickstartClusterSpec(s3: { endpoint: string; secret: string }): string {
  const doc = parseDocument(readFileSync(QUICKSTART_CLUSTER_SPEC, 'utf8'));
  const store = ['spec', 'checkpoint', 'store', 's3'];
  if (doc.getIn([...store, 'bucket']) !== QUICKSTART_BUCKET) throw new Error(`${QUICKSTART_CLUSTER_SPEC}: expected spec.checkpoint.store.s3.bucket ${QUICKSTART_BUCKET}`);
  doc.setIn([...store, 'endpoint'], s3.endpoint);
  doc.setIn([...store, 'credentialsSecret'], s3.secret);
  return doc.toString();
}
