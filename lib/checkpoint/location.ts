// Where a run's checkpoints live, seen from inside a worker pod, from the operator and from local mode. All
// must name the same directory, so the pod's volume, the operator's resume-point lookup and the trainer's
// store all come from this one function.
import type { CheckpointSpec } from '../api/types.js';
import { runUri } from './layout.js';

/** The checkpoint URI the operator chose for a gang to resume from; the trainer verifies it before use. */
export const RESUME_FROM_ENV = 'CAPTIONRUN_RESUME_FROM';

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
