// Directories only their owner may enter. The agent's and control plane's data
// dirs hold app specs with their secrets, desired state and replica logs; a
// replica (running as another user) or any other local user must not read
// them, even when the directory was made beforehand with looser modes.
import fs from 'node:fs';

const DIR_MODE = 0o700;
const FILE_MODE = 0o600;

/**
 * mkdir -p with 0700; an existing directory is set to 0700, and the regular
 * files directly inside to 0600 (symbolic links are left alone: they are not
 * followed, so a link cannot turn this into a chmod of another file).
 */
export function ensurePrivateDir(dir: string): void {
  fs.mkdirSync(dir, { recursive: true, mode: DIR_MODE });
  // mkdir's mode passes through the umask, and an existing directory keeps its own
  if ((fs.statSync(dir).mode & 0o7777) !== DIR_MODE) fs.chmodSync(dir, DIR_MODE);
  for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
    if (e.isFile()) privateFile(`${dir}/${e.name}`);
  }
}

/** chmod 0600 through a descriptor opened without following a link (the name could have become one since it was listed). */
function privateFile(file: string): void {
  let fd: number;
  try {
    fd = fs.openSync(file, fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW | fs.constants.O_NONBLOCK);
  } catch {
    return; // gone, or a link by now
  }
  try {
    const st = fs.fstatSync(fd);
    if (st.isFile() && (st.mode & 0o7777) !== FILE_MODE) fs.fchmodSync(fd, FILE_MODE);
  } finally {
    fs.closeSync(fd);
  }
}

/**
 * Replaces a file whole (0600): a temporary file written and flushed to disk,
 * then renamed over it, so a crash leaves the old content or the new, never
 * half of one.
 */
export function writePrivateAtomic(file: string, text: string | Buffer): void {
  const tmp = `${file}.${process.pid}.tmp`;
  const fd = fs.openSync(tmp, 'w', FILE_MODE);
  try {
    fs.writeSync(fd, typeof text === 'string' ? Buffer.from(text) : text);
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
  fs.renameSync(tmp, file);
}
