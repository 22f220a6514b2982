// Disk policy for images on an edge node: refuse a pull that would fill the
// disk, and choose which unused images to remove when space runs low.

export interface DiskSpace {
  free: number;
  total: number;
}

/** Why a pull of `needBytes` (null: unknown) must not start, or null when it may. */
export function pullRefusal(disk: DiskSpace, needBytes: number | null, reserveBytes: number): string | null {
  const need = (needBytes ?? 0) + reserveBytes;
  if (disk.free >= need) return null;
  const mib = (x: number) => `${Math.round(x / 1048576)} MiB`;
  return `not enough disk for the pull: ${mib(disk.free)} free, ${needBytes === null ? '' : `${mib(needBytes)} for the image plus `}${mib(reserveBytes)} kept in reserve`;
}

export interface ImageUse {
  id: string;
  refs: string[];
  bytes: number;
  created: number;
  /** a container (running or not) uses it */
  inUse: boolean;
  /** an assignment of this node names it */
  wanted: boolean;
}

/**
 * Above `highPct` percent used, remove unused, unwanted images, oldest first,
 * until usage is back under `lowPct` (or nothing removable is left).
 */
export function gcPlan(images: ImageUse[], disk: DiskSpace, highPct = 85, lowPct = 75): ImageUse[] {
  const used = (free: number) => ((disk.total - free) / disk.total) * 100;
  if (disk.total <= 0 || used(disk.free) < highPct) return [];
  const out: ImageUse[] = [];
  let free = disk.free;
  for (const img of images.filter((i) => !i.inUse && !i.wanted).sort((a, b) => a.created - b.created || (a.id < b.id ? -1 : 1))) {
    if (used(free) < lowPct) break;
    out.push(img);
    free += img.bytes;
  }
  return out;
}
