// The checkpoint store's public surface: the trainer writes with CheckpointWriter, the operator and the
// CLI read with CheckpointReader; both open stores with openStore().
export { openStore, reopenStore, type OpenStoreOptions } from './open-store.js';
export type { CheckpointStore, StoreDescriptor } from './store.js';
export type { S3StoreOptions } from './s3-store.js';
export { CheckpointWriter, type Snapshot, type SaveResult, type WriterOptions } from './writer.js';
export { CheckpointReader, type CheckpointInfo, type LoadedCheckpoint, type ReaderOptions } from './reader.js';
export { applyRetention, type RetentionPolicy, type RetentionResult } from './retention.js';
export { checkpointName, parseCheckpointName, runUri, MANIFEST_FILE, STATE_FILE } from './layout.js';
export { committedCheckpoint, FORMAT_VERSION, type Manifest, type ManifestFile } from './manifest.js';
export { HASH_ALGORITHMS, type HashAlgorithm } from './digest.js';
export { CheckpointInvalidError, CheckpointSaveError, StoreUnavailableError, INVALID_REASONS, type InvalidReason } from './errors.js';
export { checkpointMetrics } from './metrics.js';
export { checkpointLocation, PVC_MOUNT_PATH, RESUME_FROM_ENV, type CheckpointLocation } from './location.js';
