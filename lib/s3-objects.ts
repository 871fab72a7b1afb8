// The object operations every S3 user in captionrun needs (the checkpoint store, the dataset and weights
// reader, the feature cache): paginated listing, batched deletion, and reading one object whole with "no such
// key" as undefined. `call` wraps each request, so the checkpoint store can give each one its retry budget.
import { DeleteObjectsCommand, GetObjectCommand, ListObjectsV2Command, type S3Client } from '@aws-sdk/client-s3';

/** Runs one request; `what` names it for the caller's logs and errors. */
export type S3Call = <T>(what: string, request: () => Promise<T>) => Promise<T>;

const once: S3Call = (_what, request) => request();

/** S3 allows at most this many keys per DeleteObjects request. */
const DELETE_BATCH = 1000;

export interface ListedObject {
  key: string;
  size: number;
}

/** Every object whose key starts with `prefix` ("" for the whole bucket), across all pages. */
export async function listObjects(client: S3Client, bucket: string, prefix: string, call: S3Call = once): Promise<ListedObject[]> {
  const objects: ListedObject[] = [];
  let token: string | undefined;
  do {
    const page = await call(`list ${prefix}`, () => client.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: prefix || undefined, ContinuationToken: token })));
    for (const o of page.Contents ?? []) if (o.Key) objects.push({ key: o.Key, size: o.Size ?? 0 });
    token = page.IsTruncated ? page.NextContinuationToken : undefined;
  } while (token);
  return objects;
}

/** Deletes `keys` in batches; a key the server could not delete is an error naming it. */
export async function deleteObjects(client: S3Client, bucket: string, keys: readonly string[], call: S3Call = once): Promise<void> {
  for (let i = 0; i < keys.length; i += DELETE_BATCH) {
    const batch = keys.slice(i, i + DELETE_BATCH).map((Key) => ({ Key }));
    const res = await call(`delete ${batch.length} objects`, () => client.send(new DeleteObjectsCommand({ Bucket: bucket, Delete: { Objects: batch, Quiet: true } })));
    if (res.Errors?.length) throw new Error(`s3://${bucket}: could not delete ${res.Errors.map((e) => `${e.Key}: ${e.Message}`).join('; ')}`);
  }
}

/** Whether a GetObject/HeadObject failed because the object does not exist. */
export function isNoSuchKey(err: unknown): boolean {
  return (err as Error).name === 'NoSuchKey' || (err as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode === 404;
}

/** The object's bytes, or undefined when there is no such key; any other failure is thrown as it came. */
export async function getObjectBytes(client: S3Client, bucket: string, key: string): Promise<Buffer | undefined> {
  try {
    const res = await client.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
    return Buffer.from((await res.Body?.transformToByteArray()) ?? new Uint8Array());
  } catch (err) {
    if (isNoSuchKey(err)) return undefined;
    throw err;
  }
}
