// Where captionrun is installed and which version it is. Walks up from this file to the package.json named
// captionrun, so the answer is the same from the TypeScript sources and from the compiled dist/ tree.
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

let cached: { root: string; version: string } | undefined;

function find(): { root: string; version: string } {
  if (cached) return cached;
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    try {
      const pkg = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as { name?: string; version?: string };
      if (pkg.name === 'captionrun' && pkg.version) return (cached = { root: dir, version: pkg.version });
    } catch {
      // no package.json at this level
    }
    const parent = dirname(dir);
    if (parent === dir) throw new Error(`no captionrun package.json above ${fileURLToPath(import.meta.url)}`);
    dir = parent;
  }
}

/** The directory holding captionrun's package.json (and bin/, node_modules/). */
export function packageRoot(): string {
  return find().root;
}

export function packageVersion(): string {
  return find().version;
}
