// Free and total space of the volumes the trainer writes to (feature cache, checkpoint staging).
import { statfs } from 'node:fs/promises';

export interface DiskSample {
  volume: string;
  path: string;
  freeBytes: number;
  totalBytes: number;
}

export async function sampleDisk(volume: string, path: string): Promise<DiskSample> {
  const s = await statfs(path);
  // bavail, not bfree: the blocks an unprivileged trainer can actually use.
  return { volume, path, freeBytes: s.bavail * s.bsize, totalBytes: s.blocks * s.bsize };
}
