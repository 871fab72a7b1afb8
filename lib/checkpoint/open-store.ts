// `openStore(uri)`: s3://bucket/prefix opens the S3 store, anything else is a local directory.
import type { Logger } from '../telemetry/logger.js';
import { FsStore } from './fs-store.js';
import { S3Store, type S3StoreOptions } from './s3-store.js';
import type { CheckpointStore, StoreDescriptor } from './store.js';

export interface OpenStoreOptions {
  s3?: S3StoreOptions;
  logger?: Logger;
}

export function openStore(uri: string, options: OpenStoreOptions = {}): CheckpointStore {
  if (uri.startsWith('s3://')) return new S3Store(uri, options.s3, options.logger);
  return new FsStore(uri.startsWith('file://') ? new URL(uri).pathname : uri);
}

export function reopenStore(descriptor: StoreDescriptor, logger?: Logger): CheckpointStore {
  return openStore(descriptor.uri, { s3: descriptor.s3, logger });
}
