// Loads @tensorflow/tfjs-node either as an installed package or, where it cannot be installed (its install
// step downloads libtensorflow from a host that may be unreachable), as the build that setup-native.sh makes
// against TensorFlow's library from the tensorflow-cpu wheel. setup-native.sh links its build into this
// checkout's node_modules, and from there it is found like an installed package: running the setup is the
// opt-in. CAPTIONRUN_TFJS_NODE_PATH names a build elsewhere (and then it must load).
import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';

export const TFJS_NODE_PATH_ENV = 'CAPTIONRUN_TFJS_NODE_PATH';
/** A tfjs-node-gpu build directory to load as the GPU backend instead of the installed package. */
export const TFJS_NODE_GPU_PATH_ENV = 'CAPTIONRUN_TFJS_NODE_GPU_PATH';

/** The N-API version of the addon setup-native.sh builds (node-pre-gyp's lib/napi-v<N> layout). */
const NAPI_VERSION = 8;

/**
 * Where setup-native.sh links its build: inside the node_modules that holds this checkout's @tensorflow/tfjs,
 * so that the package's own `require('@tensorflow/tfjs')` resolves to the same copy (one engine, one kernel
 * registry) instead of a second one from the cache.
 */
export function defaultTfjsNodePath(): string {
  const tfjsPackageJson = createRequire(import.meta.url).resolve('@tensorflow/tfjs/package.json');
  return join(dirname(dirname(dirname(tfjsPackageJson))), '.cache', 'captionrun', 'tfjs-node');
}

/** Whether `dir` holds a tfjs-node package with a built addon. */
export function isTfjsNodeBuild(dir: string): boolean {
  return existsSync(join(dir, 'package.json')) && existsSync(join(dir, 'lib', `napi-v${NAPI_VERSION}`, 'tfjs_binding.node'));
}

/**
 * Imports tfjs-node from CAPTIONRUN_TFJS_NODE_PATH (a package directory) when set, else by package name,
 * else from the build setup-native.sh linked into this checkout. Importing it registers the "tensorflow"
 * backend as a side effect.
 */
export async function importTfjsNode(packageName: string, env: NodeJS.ProcessEnv = process.env): Promise<unknown> {
  const dir = env[TFJS_NODE_PATH_ENV];
  if (dir !== undefined && dir !== '') {
    const root = resolve(dir);
    if (!isTfjsNodeBuild(root)) {
      throw new Error(`${TFJS_NODE_PATH_ENV}=${dir} holds no built tfjs-node; run trainer-image/native/setup-native.sh`);
    }
    return importBuild(root);
  }
  try {
    return await import(packageName);
  } catch (err) {
    const linked = defaultTfjsNodePath();
    if (isTfjsNodeBuild(linked)) return importBuild(linked);
    throw err;
  }
}

/**
 * Imports tfjs-node-gpu: the installed package (the GPU image's), or the build CAPTIONRUN_TFJS_NODE_GPU_PATH
 * names. Never the CPU build by itself: the GPU backend is what a GPU pod asks for, strictly.
 */
export async function importTfjsNodeGpu(packageName: string, env: NodeJS.ProcessEnv = process.env): Promise<unknown> {
  const dir = env[TFJS_NODE_GPU_PATH_ENV];
  if (dir === undefined || dir === '') return import(packageName);
  const root = resolve(dir);
  if (!isTfjsNodeBuild(root)) throw new Error(`${TFJS_NODE_GPU_PATH_ENV}=${dir} holds no built tfjs-node`);
  return importBuild(root);
}

async function importBuild(root: string): Promise<unknown> {
  const { main } = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { main?: string };
  return import(pathToFileURL(join(root, main ?? 'index.js')).href);
}
