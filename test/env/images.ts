// What a container image means on a machine without a container runtime: the image's ENTRYPOINT and the
// programs on its PATH, as local command lines. captionrun's own images run this checkout's CLI.
import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { defaultTfjsNodePath, isTfjsNodeBuild, TFJS_NODE_GPU_PATH_ENV } from '../../trainer-image/native/tfjs-node.js';

export interface ImageRuntime {
  /** The argv the image starts when the container sets no `command` (its ENTRYPOINT). */
  entrypoint?: string[];
  /** Programs the image has on its PATH, each mapped to the local argv that runs it. */
  programs?: Record<string, string[]>;
  /** The image's WORKDIR. */
  workingDir?: string;
  /** Host paths the image's own files are at: a volume mounted above one does not hide it (pod-runner.ts). */
  files?: string[];
  env?: Record<string, string>;
}

/** Keyed by an image reference ("captionrun/trainer:dev") or a repository ("captionrun/trainer"). */
export type ImageMap = Record<string, ImageRuntime>;

export const REPO_ROOT = fileURLToPath(new URL('../../', import.meta.url));

/**
 * An image made of this checkout and node, started by `entrypoint`: its files stay visible under any volume
 * mounted above them (a worker's /tmp emptyDir over a checkout under /tmp).
 */
export function checkoutImage(entrypoint: string[], repoRoot = REPO_ROOT): ImageRuntime {
  return { entrypoint, workingDir: repoRoot, files: [resolve(repoRoot), process.execPath] };
}

export function defaultImages(repoRoot = REPO_ROOT): ImageMap {
  const cli = [process.execPath, `${repoRoot}bin/captionrun`];
  // The test cluster's GPUs are simulated: the operator asks GPU pods for the GPU backend (strictly), and this
  // image answers with TensorFlow's CPU build where setup-native.sh made one. Without it, GPU pods exit 3
  // naming the backend, as on a node whose GPU backend cannot load.
  const nativeBuild = defaultTfjsNodePath();
  const env = isTfjsNodeBuild(nativeBuild) ? { [TFJS_NODE_GPU_PATH_ENV]: nativeBuild } : undefined;
  const captionrun: ImageRuntime = { ...checkoutImage(cli, repoRoot), programs: { captionrun: cli }, ...(env ? { env } : {}) };
  return { 'captionrun/trainer': captionrun, 'captionrun/operator': captionrun, captionrun };
}

/** The repository of an image reference: registry host, tag and digest removed. */
export function imageRepository(image: string): string {
  const withoutDigest = image.split('@')[0] ?? image;
  const lastSlash = withoutDigest.lastIndexOf('/');
  const colon = withoutDigest.lastIndexOf(':');
  const repo = colon > lastSlash ? withoutDigest.slice(0, colon) : withoutDigest;
  const [first, ...rest] = repo.split('/');
  // A first component with a dot, a colon or "localhost" is a registry host, as in the Docker reference grammar.
  return rest.length > 0 && first !== undefined && (/[.:]/.test(first) || first === 'localhost') ? rest.join('/') : repo;
}

/** The runtime of an image: exact reference, then repository, then a repository ending in a known one. */
export function resolveImage(images: ImageMap, image: string): ImageRuntime | undefined {
  const repo = imageRepository(image);
  return images[image] ?? images[repo] ?? Object.entries(images).find(([key]) => repo.endsWith(`/${key}`))?.[1];
}

/** The local argv of a container: Kubernetes' command/args rules, with image programs mapped to local ones. */
export function containerArgv(runtime: ImageRuntime | undefined, command: string[] | undefined, args: string[] | undefined): string[] {
  if (command && command.length > 0) {
    const [program = '', ...rest] = command;
    const local = runtime?.programs?.[program];
    return [...(local ?? [program]), ...rest, ...(args ?? [])];
  }
  return [...(runtime?.entrypoint ?? []), ...(args ?? [])];
}
