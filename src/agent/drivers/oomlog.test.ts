// The kernel log's word on an OOM kill, read from a file laid out as /dev/kmsg's records.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { kernelOomKilled } from './oomlog.js';

test('an OOM kill is found by the killed task\'s memory cgroup; another container\'s, or no log, is not one', () => {
  const killed = 'faa66e874590f29fedc133a44eb4b1946fb90e0ea0730b3304356938be19bd0a';
  const other = '0089dcaf0fe8fcbbf3bad0cbab73f8a116eb2f24756f3ef3944a178050f174bc';
  const file = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'outpost-kmsg-')), 'kmsg');
  fs.writeFileSync(file, [
    '4,22990,49435966665,-;node invoked oom-killer: gfp_mask=0xcc0(GFP_KERNEL), order=0, oom_score_adj=0',
    `6,23876,50172564435,-;oom-kill:constraint=CONSTRAINT_MEMCG,nodemask=(null),cpuset=libpod-${killed},mems_allowed=0,oom_memcg=/libpod_parent/libpod-${killed},task_memcg=/libpod_parent/libpod-${killed},task=node,pid=25494,uid=65534`,
    `6,23877,50172564497,-;podman0: port 1(veth0) entered disabled state (libpod-${other})`,
  ].join('\n') + '\n');
  assert.equal(kernelOomKilled(killed, file), true);
  assert.equal(kernelOomKilled(other, file), false, 'named in the log, but not as a killed task\'s cgroup');
  assert.equal(kernelOomKilled(killed, path.join(path.dirname(file), 'missing')), false, 'an unreadable log says nothing');
  assert.equal(kernelOomKilled('.*', file), false, 'an id is hex, never a pattern');
});
