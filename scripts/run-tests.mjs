// Runs every compiled *.test.js under dist/ with node's test runner.
// (Node 20's --test takes no globs, so this finds the files.)
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';

function find(dir, out = []) {
  if (!fs.existsSync(dir)) return out;
  for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) find(p, out);
    else if (e.name.endsWith('.test.js')) out.push(p);
  }
  return out;
}

const only = process.argv.slice(2);
let files = [...find('dist/src'), ...find('dist/test')].sort();
if (only.length) files = files.filter((f) => only.some((o) => f.includes(o)));
// the lab builds namespaces and times delays: it runs alone, after the rest,
// so other tests' CPU load does not distort its measured RTTs
const alone = files.filter((f) => f.endsWith('lab.test.js'));
const rest = files.filter((f) => !alone.includes(f));
let status = 0;
for (const [group, conc] of [[rest, 2], [alone, 1]]) {
  if (group.length === 0) continue;
  const r = spawnSync(process.execPath, ['--test', `--test-concurrency=${conc}`, ...group], { stdio: 'inherit' });
  status ||= r.status ?? 1;
}
process.exit(status);
