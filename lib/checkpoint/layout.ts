// Where a checkpoint lives: `<prefix>/<namespace>/<run>/ckpt-<step, 12 digits>/`. The zero padding makes
// names sort like steps, but nothing relies on that: readers parse the step from the name.

export const MANIFEST_FILE = 'MANIFEST.json';
export const STATE_FILE = 'state.json';
const STEP_DIGITS = 12;
const NAME_RE = /^ckpt-(\d{12})$/;
/** Shard names are single path segments, so a manifest can never point outside its checkpoint. */
const FILE_NAME_RE = /^[A-Za-z0-9][A-Za-z0-9._-]{0,199}$/;

export function checkpointName(step: number): string {
  if (!Number.isSafeInteger(step) || step < 0 || step >= 10 ** STEP_DIGITS) {
    throw new RangeError(`checkpoint step must be an integer in [0, 1e12), got ${step}`);
  }
  return `ckpt-${step.toString().padStart(STEP_DIGITS, '0')}`;
}

/** The step a checkpoint directory name encodes, or undefined for anything that is not one. */
export function parseCheckpointName(name: string): number | undefined {
  const m = NAME_RE.exec(name);
  return m?.[1] === undefined ? undefined : Number(m[1]);
}

export function isValidFileName(name: string): boolean {
  return FILE_NAME_RE.test(name) && name !== MANIFEST_FILE;
}

/** The URI of one run's checkpoints under a store's base URI (s3://bucket/prefix or a directory). */
export function runUri(baseUri: string, namespace: string, run: string): string {
  for (const [what, v] of [['namespace', namespace], ['run', run]] as const) {
    if (!/^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$/.test(v)) throw new RangeError(`${what} "${v}" is not a Kubernetes name`);
  }
  return `${baseUri.replace(/\/+$/, '')}/${namespace}/${run}`;
}
