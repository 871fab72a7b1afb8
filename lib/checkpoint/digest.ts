// Streaming digests from hash-wasm: the same WebAssembly code in the trainer's worker thread, the operator
// and the CLI, so a digest written by one is checked bit for bit by the others.
import { createBLAKE3, createSHA256, type IHasher } from 'hash-wasm';

export const HASH_ALGORITHMS = ['sha256', 'blake3'] as const;
export type HashAlgorithm = (typeof HASH_ALGORITHMS)[number];

/** Both algorithms produce 256-bit digests, written as lowercase hex. */
export const DIGEST_HEX_RE = /^[0-9a-f]{64}$/;

export function isHashAlgorithm(v: unknown): v is HashAlgorithm {
  return typeof v === 'string' && (HASH_ALGORITHMS as readonly string[]).includes(v);
}

export interface Digest {
  update(chunk: Uint8Array): void;
  /** Hex digest of everything given to update(); the digest cannot be updated afterwards. */
  hex(): string;
}

// Instantiating a hash-wasm hasher costs a WebAssembly instance (~0.5 ms); verifying a checkpoint needs one
// per file, so finished hashers are reset and reused. An abandoned digest is simply garbage-collected.
const idle: Record<HashAlgorithm, IHasher[]> = { sha256: [], blake3: [] };
const MAX_IDLE = 8;

export async function createDigest(algorithm: HashAlgorithm): Promise<Digest> {
  const hasher: IHasher = idle[algorithm].pop() ?? (algorithm === 'sha256' ? await createSHA256() : await createBLAKE3(256));
  hasher.init();
  let done = false;
  return {
    update: (chunk) => {
      if (done) throw new Error('digest already finished');
      hasher.update(chunk);
    },
    hex: () => {
      if (done) throw new Error('digest already finished');
      done = true;
      const hex = hasher.digest('hex');
      if (idle[algorithm].length < MAX_IDLE) idle[algorithm].push(hasher);
      return hex;
    },
  };
}

export async function digestOf(algorithm: HashAlgorithm, data: Uint8Array | string): Promise<string> {
  const d = await createDigest(algorithm);
  d.update(typeof data === 'string' ? new TextEncoder().encode(data) : data);
  return d.hex();
}
