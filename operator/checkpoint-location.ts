// Where a run's checkpoints live, seen from inside a worker pod and from the operator. Both must name the
// same directory, so the pod environment and the operator's resume-point lookup come from this one place.
import { runUri } from '../lib/checkpoint/index.js';
import type { CheckpointSpec } from '../lib/api/types.js';

/** Mount point of a `store.pvc` claim inside worker pods. */
export const PVC_MOUNT_PATH = '/checkpoints';

export type CheckpointLocation =
  | { kind: 's3'; uri: string; bucket: string; prefix: string; endpoint?: string; region: string; forcePathStyle: boolean; credentialsSecret?: string }
  | { kind: 'pvc'; uri: string; claimName: string; subPath: string }
  | { kind: 'local'; uri: string };

export function checkpointLocation(store: CheckpointSpec['store'], namespace: string, run: string): CheckpointLocation {
  if (store.s3) {
    const s3 = store.s3;
    const base = `s3://${s3.bucket}${s3.prefix ? `/${s3.prefix.replace(/^\/+|\/+$/g, '')}` : ''}`;
    return {
      kind: 's3',
      uri: runUri(base, namespace, run),
      bucket: s3.bucket,
      prefix: s3.prefix,
      endpoint: s3.endpoint,
      region: s3.region,
      forcePathStyle: s3.forcePathStyle,
      credentialsSecret: s3.credentialsSecret,
    };
  }
  if (store.pvc) {
    return { kind: 'pvc', uri: runUri(`${PVC_MOUNT_PATH}/${store.pvc.subPath}`, namespace, run), claimName: store.pvc.claimName, subPath: store.pvc.subPath };
  }
  if (store.local) return { kind: 'local', uri: runUri(store.local.path, namespace, run) };
  throw new Error('spec.checkpoint.store has none of s3, pvc or local (admission should have rejected it)');
}
