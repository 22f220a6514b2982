// Whether the kernel's OOM killer took a container, from the kernel log.
// Engines do not always say: Podman 4.3 with runc on cgroup v1 reports
// OOMKilled=false for a container killed at its memory limit, and the
// container's cgroup (where the kill was counted) is gone by the time it is
// inspected. The kernel logs every OOM kill with the memory cgroup of the task
// it killed (`oom-kill:...,task_memcg=/libpod_parent/libpod-ID,...`), and the
// container's full id is in that path whatever the cgroup driver.
import fs from 'node:fs';

/** one /dev/kmsg record is at most this long */
const RECORD = 8192;
/** the ring buffer holds far fewer records than this; a bound all the same */
const MAX_RECORDS = 200_000;

/**
 * True when the kernel log records an OOM kill of a task in the container's
 * cgroup. False when it does not, or cannot be read (not root, or
 * kernel.dmesg_restrict in a container): the caller keeps what the engine said.
 */
export function kernelOomKilled(containerId: string, file = '/dev/kmsg'): boolean {
  if (!/^[0-9a-f]{12,64}$/.test(containerId)) return false;
  let fd: number;
  try {
    // non-blocking: a read at the end of the buffer answers EAGAIN instead of waiting for the next record
    fd = fs.openSync(file, fs.constants.O_RDONLY | fs.constants.O_NONBLOCK);
  } catch {
    return false;
  }
  const buf = Buffer.alloc(RECORD);
  const killed = new RegExp(`oom-kill:.*task_memcg=[^,]*${containerId}`);
  try {
    for (let i = 0; i < MAX_RECORDS; i++) {
      let n: number;
      try {
        n = fs.readSync(fd, buf, 0, RECORD, null);
      } catch (e) {
        // EPIPE: records were overwritten while reading; the read goes on from the oldest left
        if ((e as NodeJS.ErrnoException).code === 'EPIPE') continue;
        return false;
      }
      if (n === 0) return false;
      if (killed.test(buf.toString('utf8', 0, n))) return true;
    }
    return false;
  } finally {
    fs.closeSync(fd);
  }
}
