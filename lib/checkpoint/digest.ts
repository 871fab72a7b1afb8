// Streaming digests for checkpoint files: SHA-256 from node:crypto (OpenSSL, with the CPU's SHA extensions
// where present: 3.5-5x hash-wasm's SHA-256 here, which kept uploads well below raw PutObject speed) and
// BLAKE3 from hash-wasm (node:crypto has none). The trainer's worker thread, the operator and the CLI all
// use this module, so a digest written by one is checked bit for bit by the others.
import { createHash } from 'node:crypto';
import { createBLAKE3, type IHasher } from 'hash-wasm';

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
// per file, so finished BLAKE3 hashers are reset and reused. An abandoned digest is simply garbage-collected.
const idleBlake3: IHasher[] = [];
const MAX_IDLE = 8;

export async function createDigest(algorithm: HashAlgorithm): Promise<Digest> {
  let update: (chunk: Uint8Array) => void;
  let finish: () => string;
  if (algorithm === 'sha256') {
    const hash = createHash('sha256');
    update = (chunk) => void hash.update(chunk);
    finish = () => hash.digest('hex');
  } else {
    const hasher = idleBlake3.pop() ?? (await createBLAKE3(256));
    hasher.init();
    update = (chunk) => void hasher.update(chunk);
    finish = () => {
      const hex = hasher.digest('hex');
      if (idleBlake3.length < MAX_IDLE) idleBlake3.push(hasher);
      return hex;
    };
  }
  let done = false;
  return {
    update: (chunk) => {
      if (done) throw new Error('digest already finished');
      update(chunk);
    },
    hex: () => {
      if (done) throw new Error('digest already finished');
      done = true;
      return finish();
    },
  };
}

export async function digestOf(algorithm: HashAlgorithm, data: Uint8Array | string): Promise<string> {
  const d = await createDigest(algorithm);
  d.update(typeof data === 'string' ? new TextEncoder().encode(data) : data);
  return d.hex();
}
